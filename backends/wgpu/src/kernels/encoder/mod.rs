//! The embedding layer of the GPT: token plus position embeddings forward,
//! and their gradients as deterministic scatter-adds by host-built lists.

#[cfg(test)]
mod tests;

use wapo_core::error::Pos;
use wapo_core::{Error, Result};

use super::View;
use super::rows::{RowLists, batches, distinct, groups, need, scatter_add_rows};
use crate::launch::{Kernel, dispatch, idx32, kernel_params};

const SOURCE: &str = concat!(include_str!("../common.wgsl"), include_str!("encoder.wgsl"));

kernel_params! {
    /// P of encoder.wgsl; a shift is the index of a view's first element in
    /// the binding of the same name.
    struct EncoderParams {
        /// rows·c: one thread per output element.
        n: u32,
        c: u32,
        out: u32,
        wte: u32,
        wpe: u32,
        tokens: u32,
        /// Elements from one row's token to the next's.
        tok_stride: u32,
        /// forward_rows only.
        positions: u32,
        /// forward_same only: the position of every row.
        pos: u32,
        /// Rows of wte: a token at or beyond gives a NaN row.
        vocab: u32,
        /// Rows of wpe, 0 without a position table (positions then ignored).
        npos: u32,
    }
}

/// Positions of the rows: one per row (u32 view), or the same for all
/// (generation steps).
#[derive(Clone, Copy)]
pub enum Positions<'a> {
    /// u32 (rows): the position of each row.
    PerRow(View<'a>),
    /// One position for every row.
    Same(u32),
}

/// out (rows, c) row r = wte[tokens[r·tok_stride]] + wpe[pos(r)]; tokens
/// and positions are u32. wte holds `wte.len / c` rows and wpe
/// `wpe.len / c`; a per-row token or position beyond them gives a NaN row,
/// a `Positions::Same` beyond them is an error. An empty `wpe` (the rotary
/// models) adds no position embedding and ignores the positions.
#[allow(clippy::too_many_arguments)]
pub fn encoder_forward(
    out: View<'_>,
    wte: View<'_>,
    wpe: View<'_>,
    tokens: View<'_>,
    tok_stride: usize,
    pos: Positions<'_>,
    rows: usize,
    c: usize,
) -> Result<()> {
    let (rows, c, ts) = (rows as u64, c as u64, tok_stride as u64);
    if rows == 0 || c == 0 {
        return Ok(());
    }
    need(&out, rows * c, "out")?;
    need(&tokens, (rows - 1) * ts + 1, "tokens")?;
    let (vocab, npos) = (idx32(wte.len / c)?, idx32(wpe.len / c)?);
    let mut reads = vec![(&wte, "wte"), (&wpe, "wpe"), (&tokens, "tokens")];
    let (name, entry) = match &pos {
        Positions::PerRow(p) => {
            need(p, rows, "pos")?;
            reads.push((p, "pos"));
            ("gpt_encoder_forward_rows", "forward_rows")
        }
        Positions::Same(p) => {
            if npos > 0 && *p >= npos {
                return Err(Error::Invalid { field: "pos", pos: Pos::NONE, reason: "position beyond wpe" });
            }
            ("gpt_encoder_forward_same", "forward_same")
        }
    };
    distinct(&[(&out, "out")], &reads)?;
    let ctx = out.t.ctx();
    let k = Kernel { name, source: SOURCE, entry, constants: vec![] };
    for (r0, n) in batches(ctx, rows, c.max(ts), 1)? {
        let (wo, so) = out.sub(r0 * c, n * c).bind(7, "out")?;
        let (we, se) = wte.bind(0, "wte")?;
        let (wp, sp) = wpe.bind(1, "wpe")?;
        let (wt, st) = tokens.sub(r0 * ts, (n - 1) * ts + 1).bind(2, "tokens")?;
        let mut wins = vec![we, wp, wt, wo];
        let mut p = EncoderParams {
            n: idx32(n * c)?,
            c: idx32(c)?,
            out: so,
            wte: se,
            wpe: sp,
            tokens: st,
            tok_stride: idx32(ts)?,
            vocab,
            npos,
            ..Default::default()
        };
        match &pos {
            Positions::PerRow(q) => {
                let (wq, sq) = q.sub(r0, n).bind(3, "pos")?;
                wins.push(wq);
                p.positions = sq;
            }
            Positions::Same(q) => p.pos = *q,
        }
        dispatch(ctx, &k, &wins, &p, groups(n * c))?;
    }
    Ok(())
}

/// dwte[v] += Σ of dout rows with token v, dwpe[p] += Σ of dout rows at
/// position p, each summed onto the row in row order (dwte and dwpe may be
/// two views of one gradient block; dout must be another tensor): two
/// [`scatter_add_rows`] with the lists given.
pub fn encoder_backward(
    dwte: View<'_>,
    dwpe: View<'_>,
    dout: View<'_>,
    by_token: &RowLists,
    by_pos: &RowLists,
    c: usize,
) -> Result<()> {
    scatter_add_rows(dwte, dout, by_token, c)?;
    scatter_add_rows(dwpe, dout, by_pos, c)
}
