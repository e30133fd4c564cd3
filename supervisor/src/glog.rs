//! GLib's own log (`g_warning`, `g_critical`, failed `g_return_if_fail`
//! assertions: what GStreamer's libraries and plugins print besides their
//! debug log) goes into nonstopd's log, with each repeated message
//! limited to one line per [`WINDOW`].
//!
//! Left to GLib, these go to stderr as they come, without limit: an RTMP
//! source fed garbage (rtmp2src, GStreamer 1.22) fails an assertion for
//! nearly every chunk header it parses, some 25 000 lines (2 MB) a second,
//! enough to drown journald's rate limit and with it nonstopd's own lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use glib::{LogField, LogLevel, LogWriterOutput};
use tracing::{debug, error, info, warn};

/// A message repeated within this is counted, not logged.
pub const WINDOW: Duration = Duration::from_secs(10);
/// At most this many GLib lines per [`WINDOW`] in all (messages that differ
/// every time, e.g. by an address, are not collapsed by the above).
pub const BUDGET: u32 = 50;
/// Distinct messages remembered; beyond, the oldest half is forgotten.
const KEYS: usize = 512;

/// Decides which GLib messages are logged. Messages are told apart with
/// their numbers blanked out.
#[derive(Debug, Default)]
pub struct Limiter {
    /// Per message: when it was last logged (`None`: not yet), and how
    /// often it was suppressed since.
    seen: HashMap<String, (Option<Instant>, u64)>,
    /// Start of the current budget window and lines logged in it.
    window: Option<(Instant, u32)>,
}

impl Limiter {
    /// `Some(n)`: log this message now, `n` repeats of it having been
    /// suppressed since it was last logged. `None`: suppress it.
    pub fn admit(&mut self, message: &str, now: Instant) -> Option<u64> {
        let key = blank_numbers(message);
        let (start, used) = self.window.get_or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *used) = (now, 0);
        }
        let due = match self.seen.get(&key) {
            Some((Some(last), _)) => now.duration_since(*last) >= WINDOW,
            _ => true,
        };
        if !self.seen.contains_key(&key) && self.seen.len() >= KEYS {
            let mut by_age: Vec<(Option<Instant>, String)> =
                self.seen.iter().map(|(k, v)| (v.0, k.clone())).collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(KEYS / 2) {
                self.seen.remove(&k);
            }
        }
        let entry = self.seen.entry(key).or_insert((None, 0));
        if !due || *used >= BUDGET {
            entry.1 += 1;
            return None;
        }
        *used += 1;
        let suppressed = entry.1;
        *entry = (Some(now), 0);
        Some(suppressed)
    }
}

/// `message` with every run of digits (and hex digits after `0x`) as `#`.
fn blank_numbers(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let hex = c == '0' && chars.peek() == Some(&'x');
            if hex {
                chars.next();
            }
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || (hex && d.is_ascii_hexdigit()))
            {
                chars.next();
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

static LIMITER: Mutex<Option<Limiter>> = Mutex::new(None);

/// Routes GLib's log through [`Limiter`] into `tracing`. Call once, after
/// the subscriber is set up.
pub fn install() {
    glib::log_set_writer_func(write);
}

fn write(level: LogLevel, fields: &[LogField<'_>]) -> LogWriterOutput {
    let field = |key: &str| {
        fields
            .iter()
            .find(|f| f.key() == key)
            .and_then(|f| f.value_str())
    };
    let domain = field("GLIB_DOMAIN");
    // Debug and info only with G_MESSAGES_DEBUG, as GLib does.
    if glib::log_writer_default_would_drop(level, domain) {
        return LogWriterOutput::Handled;
    }
    let message = field("MESSAGE").unwrap_or("(no message)");
    let admitted = {
        let mut limiter = LIMITER.lock().unwrap_or_else(|e| e.into_inner());
        limiter
            .get_or_insert_with(Limiter::default)
            .admit(message, Instant::now())
    };
    let Some(suppressed) = admitted else {
        return LogWriterOutput::Handled;
    };
    let domain = domain.unwrap_or("default");
    match level {
        LogLevel::Error | LogLevel::Critical => {
            error!(glib = %domain, level = ?level, suppressed, "{message}")
        }
        LogLevel::Warning => warn!(glib = %domain, suppressed, "{message}"),
        LogLevel::Message | LogLevel::Info => info!(glib = %domain, suppressed, "{message}"),
        LogLevel::Debug => debug!(glib = %domain, suppressed, "{message}"),
    }
    LogWriterOutput::Handled
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSERTION: &str = "gst_rtmp_chunk_stream_parse_payload: assertion \
                             'cstream->map.size == cstream->meta->size' failed";

    #[test]
    fn a_flood_of_one_message_is_one_line_per_window() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit(ASSERTION, t0), Some(0), "the first one is logged");
        // 25 000 a second for 25 s, as rtmp2src does with garbage.
        let mut logged = vec![];
        for i in 1..=625_000u64 {
            let now = t0 + Duration::from_micros(i * 40);
            if let Some(n) = l.admit(ASSERTION, now) {
                logged.push((now - t0, n));
            }
        }
        assert_eq!(
            logged.iter().map(|(t, _)| t.as_secs()).collect::<Vec<_>>(),
            [10, 20],
            "once per window"
        );
        assert_eq!(logged[0].1, 249_999, "with the count of what was left out");
        assert_eq!(logged[1].1, 249_999);
    }

    #[test]
    fn messages_differing_by_numbers_are_one_message() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit("buffer 0x55d0c0ffee00 of 1316 bytes", t0), Some(0));
        assert_eq!(l.admit("buffer 0x7f00deadbeef of 188 bytes", t0), None);
        assert_eq!(l.admit("another message", t0), Some(0));
        assert_eq!(
            l.admit("buffer 0x1 of 2 bytes", t0 + WINDOW),
            Some(1),
            "the repeat was counted"
        );
        assert_eq!(blank_numbers("a 12 0xfF9 b0 x"), "a # # b# x");
    }

    #[test]
    fn distinct_messages_share_a_budget() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let words = |i: u32| {
            // Differ by letters, not numbers.
            let s: String = format!("{i:08}")
                .bytes()
                .map(|b| (b - b'0' + b'a') as char)
                .collect();
            format!("message {s}")
        };
        let logged = (0..1000)
            .filter(|&i| l.admit(&words(i), t0).is_some())
            .count();
        assert_eq!(logged, BUDGET as usize);
        assert!(l.seen.len() <= KEYS, "memory stays bounded");
        // Next window: a new budget; a suppressed message comes with its count.
        assert_eq!(l.admit(&words(999), t0 + WINDOW), Some(1));
    }
}
