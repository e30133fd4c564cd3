//! The `process_*` metrics every Prometheus client library exports, under
//! the same names and meanings (client_golang's process collector): start
//! time, CPU seconds, open and maximum file descriptors, resident and
//! virtual memory. Read from procfs at scrape time; Linux only, like
//! nonstopd.

use std::sync::OnceLock;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// What /proc/self/stat says that the metrics need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// User and system CPU time, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// When the process started, clock ticks after boot.
    pub starttime: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss: u64,
}

/// Parses /proc/self/stat (proc(5)): the fields after the command name,
/// which is in parentheses and may hold spaces and parentheses itself.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
        vsize: field(23)?,
        // Signed in the kernel; never negative in practice.
        rss: field(24)?,
    })
}

/// The boot time (`btime`, Unix seconds) from /proc/stat.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf takes a constant and touches no memory of ours.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

fn ticks_per_second() -> f64 {
    sysconf(libc::_SC_CLK_TCK).unwrap_or(100) as f64
}

/// When the process started, Unix seconds. Taken once: the kernel's
/// `btime` moves when the wall clock is stepped, and a start time that
/// changed would look like a restart to `changes()`.
pub fn start_time_seconds() -> Option<f64> {
    static START: OnceLock<Option<f64>> = OnceLock::new();
    *START.get_or_init(|| {
        let btime = parse_btime(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let stat = read_stat()?;
        Some(btime as f64 + stat.starttime as f64 / ticks_per_second())
    })
}

/// Open file descriptors: the entries of /proc/self/fd (the one reading
/// it included, as client_golang counts).
fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The soft limit on open files (`ulimit -n`).
fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// The process families, written at scrape time.
#[derive(Debug, Default)]
pub struct Process;

impl Collector for Process {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut gauge = |name: &str, help: &str, v: Option<f64>| {
            let Some(v) = v else { return Ok(()) };
            let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(m)
        };
        let stat = read_stat();
        gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            start_time_seconds(),
        )?;
        gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            open_fds().map(|n| n as f64),
        )?;
        gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max_fds().map(|n| n as f64),
        )?;
        let page = sysconf(libc::_SC_PAGESIZE).unwrap_or(4096);
        gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            stat.map(|s| (s.rss * page) as f64),
        )?;
        gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            stat.map(|s| s.vsize as f64),
        )?;
        if let Some(s) = stat {
            let m = enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?;
            let cpu = (s.utime + s.stime) as f64 / ticks_per_second();
            ConstCounter::new(cpu).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_read_past_a_command_name_with_spaces_and_parentheses() {
        // proc(5) fields 1..=24 of a real line, the name made awkward.
        let line = "4242 (non stop) (d)) S 1 4242 4242 0 -1 4194560 9000 0 12 0 \
                    250 75 0 0 20 0 31 0 123456 987654321 4321 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17642 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 250,
                stime: 75,
                starttime: 123456,
                vsize: 987654321,
                rss: 4321,
            })
        );
        assert_eq!(parse_stat("4242 (cut"), None);
        assert_eq!(parse_stat("4242 (short) S 1 2 3"), None);
    }

    #[test]
    fn btime_comes_from_its_line() {
        let text = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1795250000\nprocesses 7\n";
        assert_eq!(parse_btime(text), Some(1_795_250_000));
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn this_process_reads_sanely() {
        let stat = read_stat().expect("/proc/self/stat");
        assert!(stat.rss > 0 && stat.vsize > stat.rss);
        let start = start_time_seconds().expect("a start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // This test process started moments ago (a slow CI box: minutes).
        assert!(
            start <= now + 1.0 && now - start < 3600.0,
            "{start} vs {now}"
        );
        assert_eq!(start_time_seconds(), Some(start), "taken once");
        // Other tests open and close files meanwhile: no exact count.
        let fds = open_fds().unwrap();
        assert!(fds >= 1, "at least the one reading /proc/self/fd");
        assert!(max_fds().unwrap() >= fds);
    }
}
