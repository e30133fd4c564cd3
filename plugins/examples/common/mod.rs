//! What the benchmark harnesses share: each measurement runs in a child
//! process of the harness itself, which prints one `RESULT key=value ...`
//! line; the parent collects them.

// Each harness uses a subset of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

pub type Result<T> = std::result::Result<T, String>;

/// What a child reports: `key=value` pairs.
pub type Fields = BTreeMap<String, String>;

/// This harness's name, for messages.
pub fn program() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "bench".into())
}

pub fn parse_num<T: std::str::FromStr>(s: &str, name: &str) -> Result<T> {
    s.parse()
        .map_err(|_| format!("{name}: {s:?} is not a valid number"))
}

/// Aborts the process if a measurement hangs.
pub fn watchdog(limit: Duration, what: String) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "{}: {what} did not finish within {} s; aborting",
            program(),
            limit.as_secs()
        );
        std::process::exit(3);
    });
}

pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// Voluntary context switches (the thread blocked: waits, sleeps).
    pub nvcsw: libc::c_long,
    /// Involuntary context switches (the thread was preempted).
    pub nivcsw: libc::c_long,
}

/// Resource usage of this whole process so far.
pub fn usage() -> Usage {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the provided, properly sized struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage failed");
    // SAFETY: initialised by the successful call above (and zeroed before).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        nvcsw: ru.ru_nvcsw,
        nivcsw: ru.ru_nivcsw,
    }
}

/// Median; NaN for no values.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn print_result(r: &Fields) {
    let fields: Vec<String> = r.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT {}", fields.join(" "));
}

/// Runs this harness with `args` as a child and parses its RESULT line.
pub fn child(args: &[String]) -> Result<Fields> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "));
    match (out.status.success(), line) {
        (true, Some(line)) => Ok(line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        _ => Err(format!(
            "`{} {}` failed ({})",
            program(),
            args.join(" "),
            out.status
        )),
    }
}
