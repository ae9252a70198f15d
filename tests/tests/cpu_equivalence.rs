//! The host backends against the f64 host reference: the backend-generic
//! equivalence suite (every primitive, every objective and option at token
//! and logits level, every output tensor on the option grid, numerical
//! stability, error positions, the 80 golden cases through both logits
//! paths), for the f32 reference tensor and for `CpuTensor` with its fused
//! one-pass objective.

use wapo_tests::suite::Profile;

wapo_tests::equivalence_suite!(host_f32: wapo_core::host::HostTensor<f32> = Some(()), Profile::HOST);
wapo_tests::equivalence_suite!(cpu: wapo_cpu::CpuTensor = Some(wapo_cpu::Cpu::default()), Profile::HOST);
