//! The metrics' plumbing: the record of one step ([`Metrics`]), the clock
//! that times it ([`Clock`]), and reading and adding one metric.

use alloc::string::ToString;

/// Namespaced scalar metrics of one step, in a stable order (the
/// diagnostics' type: one record shape for every metric).
pub use crate::diagnostics::Metrics;

/// Seconds on some monotonic clock (timings are left out without one: the
/// core has no clock of its own).
pub type Clock = fn() -> f64;

/// Seconds since the first call: a [`Clock`] for std builds.
#[cfg(feature = "std")]
pub fn wall_clock() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
}

/// The value of metric `name`, if present.
pub fn metric(m: &Metrics, name: &str) -> Option<f64> {
    m.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

pub(crate) fn push(m: &mut Metrics, name: &str, value: f64) {
    m.push((name.to_string(), value));
}
