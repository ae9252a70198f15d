//! Input validation in one round trip: every check contributes a tensor of
//! violation flags, the flags are reduced on the device into one bit mask,
//! and only that one number is downloaded. The host copy of a flagged tensor
//! is read only when something is wrong, to name the first bad position.
//! (On a GPU each download is a full synchronisation; one per check would
//! cost more than the objective itself at moderate sizes.)

use crate::error::{Error, Pos, Result};
use crate::tensor::{Binary, Tensor, Unary};

/// What a flagged element means.
#[derive(Clone, Copy)]
enum Kind {
    NonFinite,
    Invalid(&'static str),
}

const CAP: usize = 8;

/// Pending checks, in order of priority (the first failing one is reported).
pub(crate) struct Checks<T> {
    items: [Option<(&'static str, Kind, T)>; CAP],
    len: usize,
}

impl<T: Tensor> Checks<T> {
    pub(crate) fn new() -> Self {
        Checks { items: Default::default(), len: 0 }
    }

    fn push(&mut self, field: &'static str, kind: Kind, bad: T) {
        debug_assert!(self.len < CAP, "raise CAP");
        if self.len < CAP {
            self.items[self.len] = Some((field, kind, bad));
            self.len += 1;
        }
    }

    /// `x` must be finite (only where `mask` is 1).
    pub(crate) fn finite(&mut self, field: &'static str, x: &T, mask: Option<&T>) -> Result<()> {
        let mut bad = x.unary(Unary::IsFinite)?.unary(Unary::IsZero)?;
        if let Some(m) = mask {
            bad = bad.mul(m)?;
        }
        self.push(field, Kind::NonFinite, bad);
        Ok(())
    }

    /// `m` must hold only 0 and 1.
    pub(crate) fn mask(&mut self, field: &'static str, m: &T) -> Result<()> {
        let ok = m.binary(&m.scalar(0.0)?, Binary::Eq)?.add(&m.binary(&m.scalar(1.0)?, Binary::Eq)?)?;
        self.push(field, Kind::Invalid("mask values must be 0 or 1"), ok.unary(Unary::IsZero)?);
        Ok(())
    }

    /// `ids` must be integers in `0..n`.
    pub(crate) fn index(&mut self, field: &'static str, ids: &T, n: usize, reason: &'static str) -> Result<()> {
        let bad = ids
            .binary(&ids.scalar(0.0)?, Binary::Lt)?
            .add(&ids.scalar(n as f64)?.binary(ids, Binary::Le)?)?
            .add(&ids.unary(Unary::Floor)?.binary(ids, Binary::Eq)?.unary(Unary::IsZero)?)?;
        self.push(field, Kind::Invalid(reason), bad);
        Ok(())
    }

    /// One reduction and one download for all checks.
    pub(crate) fn run(self) -> Result<()> {
        let mut total: Option<T> = None;
        for (k, (_, _, bad)) in self.items.iter().flatten().enumerate() {
            // min(count, 1) · 2^k: a bit per check, exact in f32 for CAP ≤ 24.
            let bit = bad.sum_all()?.min_scalar(1.0)?.mul_scalar((1u32 << k) as f64)?;
            total = Some(match total {
                None => bit,
                Some(t) => t.add(&bit)?,
            });
        }
        let Some(total) = total else { return Ok(()) };
        let mask = total.item()?;
        if mask == 0.0 {
            return Ok(());
        }
        let first = (mask as u32).trailing_zeros() as usize;
        let Some((field, kind, bad)) = self.items.into_iter().flatten().nth(first) else {
            return Err(Error::Invalid { field: "input", pos: Pos::NONE, reason: "non-finite values" });
        };
        let pos = super::first_position(&bad)?;
        Err(match kind {
            Kind::NonFinite => Error::NonFinite { field, pos },
            Kind::Invalid(reason) => Error::Invalid { field, pos, reason },
        })
    }
}
