//! The process: loads the config, runs every channel on one tokio event
//! loop, talks to systemd (readiness, watchdog, status) and stops cleanly
//! on SIGTERM / SIGINT.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::channel::{Channel, Handle};
use crate::config::Config;

/// Logs for journald and terminals alike: one line per event, fields as
/// `key=value`, no colours unless a person is watching. `RUST_LOG` filters
/// (default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // journald stamps every line itself.
    if under_journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

/// Loads `path`, or explains every problem in it.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!(
            "{}\n{}: {} error(s)",
            lines.join("\n"),
            path.display(),
            errors.len()
        )
    })
}

fn notify(state: &[sd_notify::NotifyState]) {
    // Not under systemd (no NOTIFY_SOCKET): nothing to do.
    let _ = sd_notify::notify(false, state);
}

fn status_line(handles: &[Handle]) -> String {
    handles
        .iter()
        .map(|h| {
            let s = h.status.lock().unwrap_or_else(|e| e.into_inner());
            format!("{} {}", h.id, s)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs the channels of `config` until SIGTERM or SIGINT.
pub fn run(config: &Path) -> anyhow::Result<()> {
    let cfg = load(config)?;
    gst::init().context("initializing GStreamer")?;
    gstnonstop::plugin_register_static().context("registering the nonstop elements")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let result = rt.block_on(serve(cfg));
    // A teardown stuck in a network call must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The watchdog period systemd asked for, if any. Like libsystemd, a
/// missing WATCHDOG_PID means "for us" (sd-notify's helper insists on it).
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    // First, so a SIGTERM during start-up still stops cleanly.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    for (c, ch) in cfg.channels.iter().enumerate() {
        // Encoder backends are probed per channel: one without a usable
        // encoder is reported and the others still go on air.
        let choices = match crate::encode::resolve(&cfg, c) {
            Ok(choices) => choices,
            Err(errors) => {
                for e in errors {
                    error!(channel = %ch.id.get_ref(), "channel not started: {e}");
                }
                continue;
            }
        };
        for (e, enc) in ch.encoders.iter().zip(&choices) {
            for (i, choice) in enc.iter().enumerate() {
                info!(channel = %ch.id.get_ref(), encoder = e.id(), instance = if i == 0 { "primary" } else { "backup" },
                    backend = choice.plan.backend.name(), element = choice.plan.factory, why = %choice.why, "encoder backend");
            }
        }
        let (mut channel, handle) = Channel::new(ch.clone(), choices);
        // A channel that cannot be built is reported; the others go on air.
        match channel.start() {
            Ok(()) => {
                tasks.push(tokio::spawn(channel.run(stop_rx.clone())));
                handles.push(handle);
            }
            Err(e) => error!(channel = %handle.id, "channel not started: {e:#}"),
        }
    }
    if handles.is_empty() {
        return Err(anyhow!("no channel could be started"));
    }
    info!(
        channels = handles.len(),
        version = env!("CARGO_PKG_VERSION"),
        "nonstopd running"
    );
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("{} channel(s) started", handles.len())),
    ]);

    let watchdog = watchdog_period().map(|p| (p / 2).max(Duration::from_millis(100)));
    let mut keepalive = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(1)));
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
            _ = keepalive.tick() => {
                let line = status_line(&handles);
                if line != last_status {
                    notify(&[sd_notify::NotifyState::Status(&line)]);
                    last_status = line;
                }
                if let Some(period) = watchdog {
                    // Keepalive only while every channel's loop is turning,
                    // so a hung channel gets the daemon restarted.
                    let now = crate::monotonic_ns();
                    let stuck: Vec<&str> = handles
                        .iter()
                        .filter(|h| now.saturating_sub(h.heartbeat.load(Ordering::Relaxed)) > period.as_nanos() as u64)
                        .map(|h| h.id.as_str())
                        .collect();
                    if stuck.is_empty() {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                    } else {
                        warn!(channels = ?stuck, "channel event loop not turning; withholding the watchdog keepalive");
                    }
                }
            }
        }
    }
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: finalizing outputs"),
    ]);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    info!("nonstopd stopped");
    Ok(())
}
