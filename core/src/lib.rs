//! wapo-core: the math of Winner Advantage Policy Optimization (WAPO) and of
//! the GRPO family it is compared against, generic over a small [`Tensor`]
//! trait so that any engine implementing a handful of primitives gets the
//! whole objective.
//!
//! * [`objective`] — the loss family of `OBJECTIVE.md` (start at
//!   [`objective::wapo`] to read the WAPO loss).
//! * [`advantage`], [`aggregate`], [`taxonomy`], [`diagnostics`] — its parts.
//! * [`host::HostTensor`] — the Vec-backed reference backend and the one
//!   host tensor every backend's host side runs on (`alloc`; a buffer pool
//!   with `std`, parallel loops with `rayon`).
//! * [`rl`] — the architecture description of both model families
//!   ([`rl::arch`], [`rl::layout`]), the `Policy` trait, and the training
//!   loop written once (SFT, the RL step, evaluation) (`alloc`).
//! * [`task`] — the toy tasks and the text tasks with verifiers
//!   ([`task::text`]: arith, countdown, gsm, gsm8k) (`alloc`).
//! * `case` — case files (`serde`).
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use wapo_core::advantage::Groups;
//! use wapo_core::host::HostTensor;
//! use wapo_core::logits::{LogitsBatch, logits_objective};
//! use wapo_core::objective::wapo;
//! use wapo_core::{Shape, Tensor};
//!
//! type T = HostTensor<f64>;
//! let up = |v: &[f64], s| T::upload(&(), v, s).unwrap();
//! // Two completions of one prompt, 2 tokens each, a vocabulary of 3.
//! let z = up(&[2.0, 0.5, -1.0, 0.1, 0.2, 0.3, 1.0, 1.0, 1.0, -2.0, 0.0, 2.0], Shape::d3(2, 2, 3));
//! let y = up(&[0.0, 2.0, 1.0, 2.0], Shape::d2(2, 2));
//! let cfg = wapo::config(0.2, 4); // clip ε, L_max
//! let out = logits_objective(&cfg, &LogitsBatch {
//!     groups: &Groups::from_ids(&(), &[7, 7]).unwrap(),
//!     rewards: &up(&[1.0, 0.0], Shape::d1(2)),
//!     mask: &up(&[1.0; 4], Shape::d2(2, 2)),
//!     logits: &z,
//!     tokens: &y,
//!     old_logprobs: &up(&[-0.3, -1.0, -1.2, -0.2], Shape::d2(2, 2)),
//! }).unwrap();
//! let s = out.summary().unwrap();
//! assert!(s.loss < 0.0); // only the winner counts, pushed up
//! assert_eq!(s.bins.kept.iter().sum::<u64>(), 2); // its two tokens
//! # }
//! ```
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
