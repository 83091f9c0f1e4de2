//! CPU time and resident memory of a process, read from `/proc` (Linux).

use std::time::Instant;

/// Clock ticks per second of `/proc/*/stat` times: Linux exposes them in
/// `USER_HZ`, which is 100 on every architecture it supports.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// Reads process `pid` (`"self"` for this one); `None` if it is gone or
/// this is not Linux.
pub fn sample(pid: &str) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ")".
    let cpu_ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Sample {
        at: Instant::now(),
        cpu_ticks,
        rss_kib,
    })
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(a: &Sample, b: &Sample) -> f64 {
    let secs = b.at.duration_since(a.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (b.cpu_ticks.saturating_sub(a.cpu_ticks)) as f64 / USER_HZ / secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample("self").expect("linux /proc");
        assert!(s.rss_kib > 0);
    }
}
