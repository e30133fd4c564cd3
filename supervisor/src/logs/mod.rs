//! nonstopd's logs: where they go, in what form, and their level while it
//! runs.
//!
//! - text on stderr (the default; without timestamps under journald,
//!   which stamps lines itself);
//! - native journald records when `JOURNAL_STREAM` says stderr is the
//!   journal ([`journal`]): priorities, so `journalctl -p err` works, and
//!   the fields `CHANNEL=`, `INPUT=`, `OUTPUT=`, `NONSTOP_EVENT=`;
//! - `--log-format json`: one JSON object per line, for Loki or ELK.
//!
//! The level can change without a restart ([`set_level`], which
//! org.freedesktop.LogControl1 calls): a restart takes every channel off
//! air.

mod journal;

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines of text (native journald records under systemd)
    #[default]
    Text,
    /// One JSON object per line
    Json,
}

/// The running log's level control.
struct Control {
    filter: reload::Handle<EnvFilter, Registry>,
    /// syslog's name of the level now (`info` unless RUST_LOG said more).
    level: String,
    target: &'static str,
    /// GStreamer's threshold when nonstopd started (GST_DEBUG), restored
    /// at `info` and `notice`.
    gst_start: Option<gst::DebugLevel>,
}

static CONTROL: OnceLock<Mutex<Control>> = OnceLock::new();

/// Sets up logging for the daemon, once.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = if directives.trim().is_empty() {
        EnvFilter::new("info")
    } else {
        filter
    };
    let level = level_of(&directives);
    let (filter, handle) = reload::Layer::new(filter);
    let base = tracing_subscriber::registry().with(filter);
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let text = || {
        tracing_subscriber::fmt::layer()
            .with_writer(crate::logline::OneLine)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
    };
    let target = match format {
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(std::io::stderr);
            let _ = base.with(json).try_init();
            "console"
        }
        LogFormat::Text if under_journal => match journal::Journal::connect() {
            Ok(j) => {
                let _ = base.with(j).try_init();
                "journal"
            }
            Err(e) => {
                // journald stamps every line itself.
                let _ = base.with(text().without_time()).try_init();
                tracing::warn!("cannot write to journald natively ({e}); logging text to stderr");
                "console"
            }
        },
        LogFormat::Text => {
            let _ = base.with(text()).try_init();
            "console"
        }
    };
    let _ = CONTROL.set(Mutex::new(Control {
        filter: handle,
        level,
        target,
        gst_start: None,
    }));
}

/// The syslog level names org.freedesktop.LogControl1 uses.
pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The level RUST_LOG's directives amount to, by syslog's name.
fn level_of(directives: &str) -> String {
    let d = directives.trim().to_ascii_lowercase();
    let global = d
        .split(',')
        .find(|p| !p.contains('='))
        .unwrap_or("info")
        .trim();
    match global {
        "error" => "err",
        "warn" => "warning",
        "debug" | "trace" => "debug",
        _ => "info",
    }
    .to_owned()
}

/// The level now (syslog's name).
pub fn level() -> String {
    CONTROL.get().map_or_else(
        || "info".to_owned(),
        |c| c.lock().unwrap_or_else(|e| e.into_inner()).level.clone(),
    )
}

/// Where logs go: `journal` or `console` (stderr).
pub fn target() -> &'static str {
    CONTROL.get().map_or("console", |c| {
        c.lock().unwrap_or_else(|e| e.into_inner()).target
    })
}

/// What `level` (a syslog name) means for nonstopd's own filter and for
/// GStreamer's debug threshold (from `start`, what GST_DEBUG gave).
pub fn mapping(level: &str, start: gst::DebugLevel) -> Option<(&'static str, gst::DebugLevel)> {
    let lower = |l: gst::DebugLevel| if start < l { start } else { l };
    Some(match level {
        "emerg" | "alert" | "crit" | "err" => ("error", lower(gst::DebugLevel::Error)),
        "warning" => ("warn", lower(gst::DebugLevel::Warning)),
        "notice" | "info" => ("info", start),
        "debug" => ("debug", gst::DebugLevel::Debug.max(start)),
        _ => return None,
    })
}

/// Changes the level of nonstopd's log and GStreamer's debug threshold
/// at once, while it runs.
pub fn set_level(level: &str) -> Result<(), String> {
    let Some(control) = CONTROL.get() else {
        return Err("logging is not set up".into());
    };
    let mut c = control.lock().unwrap_or_else(|e| e.into_inner());
    let start = *c
        .gst_start
        .get_or_insert_with(gst::log::get_default_threshold);
    let Some((ours, gst_level)) = mapping(level, start) else {
        return Err(format!(
            "unknown log level \"{level}\": one of {}",
            LEVELS.join(", ")
        ));
    };
    c.filter
        .reload(EnvFilter::new(ours))
        .map_err(|e| format!("cannot change the log level: {e}"))?;
    if gst_level != start {
        forward_gstreamer();
    }
    gst::log::set_default_threshold(gst_level);
    tracing::info!(level, gstreamer = ?gst_level, "log level changed");
    c.level = level.to_owned();
    Ok(())
}

/// GStreamer's debug messages into this log, in its format (text, the
/// journal or JSON), instead of GStreamer's own lines on stderr: once, the
/// first time the level raises GStreamer's threshold.
fn forward_gstreamer() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::log::remove_default_log_function();
        gst::log::add_log_function(|category, level, file, _function, line, object, message| {
            let Some(text) = message.get() else {
                return;
            };
            let object = object.map(|o| o.to_string()).unwrap_or_default();
            let category = category.name();
            macro_rules! ev {
                ($lvl:expr) => {
                    tracing::event!(target: "gstreamer", $lvl, gst_category = %category,
                        gst_object = %object, gst_file = %file, gst_line = line, "{text}")
                };
            }
            match level {
                gst::DebugLevel::Error => ev!(tracing::Level::ERROR),
                gst::DebugLevel::Warning => ev!(tracing::Level::WARN),
                gst::DebugLevel::Fixme | gst::DebugLevel::Info => ev!(tracing::Level::INFO),
                gst::DebugLevel::Debug => ev!(tracing::Level::DEBUG),
                _ => ev!(tracing::Level::TRACE),
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_levels_map_to_ours_and_gstreamers() {
        use gst::DebugLevel as G;
        assert_eq!(mapping("debug", G::None), Some(("debug", G::Debug)));
        assert_eq!(mapping("debug", G::Log), Some(("debug", G::Log)));
        assert_eq!(mapping("info", G::Warning), Some(("info", G::Warning)));
        assert_eq!(mapping("notice", G::None), Some(("info", G::None)));
        assert_eq!(mapping("warning", G::Debug), Some(("warn", G::Warning)));
        assert_eq!(mapping("warning", G::None), Some(("warn", G::None)));
        assert_eq!(mapping("err", G::Fixme), Some(("error", G::Error)));
        assert_eq!(mapping("crit", G::None), Some(("error", G::None)));
        assert_eq!(mapping("verbose", G::None), None);
        for l in LEVELS {
            assert!(mapping(l, G::None).is_some(), "{l}");
        }
    }

    #[test]
    fn rust_log_reads_as_a_syslog_level() {
        assert_eq!(level_of(""), "info");
        assert_eq!(level_of("debug"), "debug");
        assert_eq!(level_of("warn,nonstop_supervisor=debug"), "warning");
        assert_eq!(level_of("nonstop_supervisor=debug"), "info");
        assert_eq!(level_of("ERROR"), "err");
    }
}
