//! wapo-core: the math of Winner Advantage Policy Optimization (WAPO) and of
//! the GRPO family it is compared against, generic over a small [`Tensor`]
//! trait so that any engine implementing a handful of primitives gets the
//! whole objective.
//!
//! * [`objective`] — the loss family of `OBJECTIVE.md` (start at
//!   [`objective::wapo`] to read the WAPO loss).
//! * [`advantage`], [`aggregate`], [`taxonomy`], [`diagnostics`] — its parts.
//! * [`host::HostTensor`] — a Vec-backed reference backend (`alloc`).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod advantage;
pub mod aggregate;
pub mod error;
pub mod logits;
pub mod objective;
pub mod scalar;
pub mod shape;
pub mod taxonomy;
pub mod tensor;

#[cfg(feature = "serde")]
pub mod case;

#[cfg(feature = "alloc")]
pub mod task;

#[cfg(feature = "alloc")]
pub mod rl;

#[cfg(feature = "alloc")]
pub mod diagnostics;
#[cfg(feature = "alloc")]
pub mod host;

pub use error::{Error, Result};
pub use objective::{AdvantageMode, Aggregation, BinSpec, Objective, ObjectiveConfig};
pub use scalar::Scalar;
pub use shape::Shape;
pub use tensor::{Binary, Reduce, Tensor, Unary};
