//! Resident memory of a process, from `/proc/<pid>/status`.

use crate::BoxResult;

pub struct Memory {
    /// Resident now.
    pub rss_mib: f64,
    /// The most it was resident so far.
    pub peak_mib: f64,
}

/// `process` is a pid or `self`.
pub fn of_process(process: &str) -> BoxResult<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status"))?;
    let field = |name: &str| -> BoxResult<f64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .ok_or_else(|| format!("no {name} in /proc/{process}/status"))?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok(Memory {
        rss_mib: field("VmRSS:")?,
        peak_mib: field("VmHWM:")?,
    })
}
