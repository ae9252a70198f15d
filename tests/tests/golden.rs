//! The 80 golden cases computed by the WAPO authors' PyTorch trainer in
//! float64: every field must match in f64 within 1e-9 + 1e-7·|b| and in f32
//! within 1e-4 relative.

use wapo_core::case::Tolerance;
use wapo_core::host::HostTensor;
use wapo_tests::assert_golden;

#[test]
fn golden_cases_match_in_f64() {
    assert_golden::<HostTensor<f64>>(&(), Tolerance::F64);
}

#[test]
fn golden_cases_match_in_f32() {
    assert_golden::<HostTensor<f32>>(&(), Tolerance::F32);
}
