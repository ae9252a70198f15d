//! One test suite for every backend, written once over the `Tensor` trait
//! (objective equivalence) and the `Policy` trait (policy behaviour), and
//! instantiated per backend and device configuration in one line each:
//!
//! ```ignore
//! wapo_tests::equivalence_suite!(cpu: wapo_cpu::CpuTensor = Some(wapo_cpu::Cpu::default()), Profile::HOST);
//! wapo_tests::policy_suite!(cpu: Some(CpuPolicies));
//! ```
//!
//! The device expression gives `None` where the backend has no device here
//! (a machine without a GPU adapter: the tests print that they skipped).
//! Only what one backend alone has stays in that backend's test file.

pub mod cases;
pub mod eval;
pub mod fields;
pub mod objective;
pub mod policy;
pub mod primitives;

pub use policy::{CpuPolicies, Policies, WgpuPolicies};
pub use wapo_core::Tensor;

/// What a backend and device configuration can be held to. Elementwise,
/// against `HostTensor<f32>`: |a − b| ≤ rel·|b| + abs (or both NaN).
/// `long_rows`: the relative tolerance of the composed path on rows of 10⁵
/// entries, whose f32 sums run in the backend's order (a sequential host
/// sum over 151,936 entries is off by ~3e-4, a GPU's tree reduction by far
/// less). `max_row`: the longest last axis the device takes in one binding.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    pub rel: f64,
    pub abs: f64,
    pub long_rows: f64,
    pub max_row: usize,
}

impl Profile {
    /// Host arithmetic with another libm: 2 f32 ulp of exp/ln; sequential sums.
    pub const HOST: Profile = Profile { rel: 2.4e-7, abs: 0.0, long_rows: 1e-3, max_row: usize::MAX };
    /// A GPU's own exp/ln: 1e-5 relative and absolute; tree reductions.
    pub const GPU: Profile = Profile { rel: 1e-5, abs: 1e-5, long_rows: 1e-4, max_row: usize::MAX };

    /// This profile on a device whose storage bindings hold `bytes`.
    pub const fn with_binding_cap(self, bytes: usize) -> Profile {
        Profile { max_row: bytes / 4, ..self }
    }
}

/// `equivalence_suite!(module: TensorType = Option<device>, Profile)`:
/// every body of [`objective`] and [`primitives`] as `#[test]`s.
#[macro_export]
macro_rules! equivalence_suite {
    ($name:ident: $tensor:ty = $dev:expr, $precision:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::suite::objective as o;

            fn dev() -> Option<<$tensor as $crate::suite::Tensor>::Device> {
                $dev
            }

            #[test]
            fn primitives_match_host() {
                let Some(d) = dev() else { return };
                $crate::suite::primitives::primitives_body::<$tensor>(&d, $precision);
            }
            #[test]
            fn token_level_every_objective_and_option() {
                let Some(d) = dev() else { return };
                o::token_level_body::<$tensor>(&d);
            }
            #[test]
            fn logits_level_every_objective_and_option() {
                let Some(d) = dev() else { return };
                o::logits_level_body::<$tensor>(&d);
            }
            #[test]
            fn option_grid_every_output_tensor() {
                let Some(d) = dev() else { return };
                o::option_grid_body::<$tensor>(&d);
            }
            #[test]
            fn stability() {
                let Some(d) = dev() else { return };
                o::stability_body::<$tensor>(&d);
            }
            #[test]
            fn vocabulary_151936() {
                let Some(d) = dev() else { return };
                o::large_vocab_body::<$tensor>(&d, $precision);
            }
            #[test]
            fn errors_match_host() {
                let Some(d) = dev() else { return };
                o::errors_body::<$tensor>(&d);
            }
            #[test]
            fn golden_cases() {
                let Some(d) = dev() else { return };
                o::golden_body::<$tensor>(&d);
            }
        }
    };
}

/// `policy_suite!(module: Option<impl Policies>)`: every body of [`policy`]
/// as `#[test]`s.
#[macro_export]
macro_rules! policy_suite {
    ($name:ident: $policies:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::suite::policy as p;

            fn policies() -> Option<impl $crate::suite::Policies> {
                $policies
            }

            #[test]
            fn kv_cache_logprobs_match_full_forward() {
                let Some(m) = policies() else { return };
                p::generate::kv_cache_logprobs_body(&m);
            }
            #[test]
            fn greedy_is_the_argmax_of_the_full_forward() {
                let Some(m) = policies() else { return };
                p::generate::greedy_argmax_body(&m);
            }
            #[test]
            fn bad_inputs_are_errors() {
                let Some(m) = policies() else { return };
                p::generate::bad_inputs_body(&m);
            }
            #[test]
            fn shared_prefix_equals_unshared() {
                let Some(m) = policies() else { return };
                p::shared::shared_prefix_body(&m);
            }
            #[test]
            fn rl_step_runs_lowers_the_loss_and_is_deterministic() {
                let Some(m) = policies() else { return };
                p::train::rl_step_body(&m);
            }
            #[test]
            fn sft_lowers_the_loss_and_warm_start_evaluates() {
                let Some(m) = policies() else { return };
                p::train::warm_start_body(&m);
            }
            #[test]
            fn checkpoint_round_trip_and_bit_exact_resume() {
                let Some(m) = policies() else { return };
                p::checkpoint::round_trip_body(&m);
            }
            #[test]
            fn rl_resume_is_bit_exact() {
                let Some(m) = policies() else { return };
                p::checkpoint::rl_resume_body(&m);
            }
        }
    };
}
