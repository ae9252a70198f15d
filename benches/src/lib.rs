//! Benchmark code, kept out of the `no_std` core: the training benchmark of
//! the WAPO authors' toy setting for any backend's policy ([`train`]; `wapo
//! bench train` prints it) and the CPU policy ready to time ([`cpu`]). The
//! criterion benches are in `benches/`.

pub mod cpu;
pub mod train;

pub use cpu::{ToySetup, bench_cpu, toy_setup};
pub use train::{BenchReport, ShapeTask, bench_sft_tokens, bench_train, large, process_cpu_s, toy};
