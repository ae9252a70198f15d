//! Peak resident memory of this process, where the OS reports it.

/// `VmHWM` of `/proc/self/status` in bytes (Linux); `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// "1.23 GB", or "not reported" where the OS gives no figure.
pub fn peak_rss_text() -> String {
    peak_rss_bytes().map_or_else(|| "not reported".into(), |b| format!("{:.2} GB", b as f64 / 1e9))
}
