//! The process: loads the config, runs every channel on one tokio event
//! loop, talks to systemd (readiness, watchdog, status) and stops cleanly
//! on SIGTERM / SIGINT.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::registry::Registry;

/// Logs for journald and terminals alike: one line per event, fields as
/// `key=value`, no colours unless a person is watching. `RUST_LOG` filters
/// (default `info`).
pub fn init_logging(format: LogFormat) {
    crate::logs::init(format);
    // GLib's warnings and criticals (GStreamer's libraries) too, limited.
    crate::glog::install();
}

pub use crate::logs::LogFormat;

/// Raises the soft limit on open files to the hard one (systemd gives
/// services 1024 and 524288) and returns the new soft limit. The soft
/// limit only protects programs that use `select()`; nonstopd's sockets,
/// pipes and files are many, and GStreamer 1.22's rtmp2src leaks a socket
/// and an eventfd on every attempt to connect to an RTMP server that
/// rejects the stream (a wrong key, a stream not published yet) or sends
/// garbage: retried for hours, 1024 runs out and every pipeline that opens
/// anything fails. (An RTMP input retried every 35 s leaks 2 descriptors
/// each time: 1024 lasts about 5 hours, 524288 about 100 days.)
pub fn raise_open_file_limit() -> std::io::Result<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

pub use crate::registry::{load, load_checked};

fn notify(state: &[sd_notify::NotifyState]) {
    // Not under systemd (no NOTIFY_SOCKET): nothing to do.
    let _ = sd_notify::notify(false, state);
}

/// Which bus carries the control API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    Session,
    System,
    Address(String),
    Off,
}

/// Runs the channels of `config` until SIGTERM or SIGINT.
pub fn run(config: &Path, bus: Bus, metrics: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let cfg = load(config)?;
    match raise_open_file_limit() {
        Ok(n) => info!(open_files = n, "open file limit"),
        Err(e) => warn!("could not raise the open file limit: {e}"),
    }
    gst::init().context("initializing GStreamer")?;
    gstnonstop::plugin_register_static().context("registering the nonstop elements")?;
    // Two workers: a busy channel loop never delays a D-Bus call, and the
    // other way round. Media threads stay GStreamer's.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let result = rt.block_on(serve(config.to_owned(), cfg, bus, metrics));
    // A teardown stuck in a network call must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Connects to the bus and publishes the manager and every channel. A bus
/// that cannot be reached costs the control API, never the channels.
async fn connect(bus: &Bus, registry: &Arc<Registry>) -> Option<zbus::Connection> {
    let builder = match bus {
        Bus::Off => return None,
        Bus::Session => zbus::connection::Builder::session(),
        Bus::System => zbus::connection::Builder::system(),
        Bus::Address(a) => zbus::connection::Builder::address(a.as_str()),
    };
    let (requests, incoming) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(registry.clone().serve(incoming));
    let manager = crate::dbus::Manager {
        started_at: nonstop_api::now_us(),
        registry: requests,
        fleet: registry.fleet(),
    };
    let conn = match builder.and_then(|b| b.name(crate::dbus::SERVICE)) {
        Ok(b) => b.serve_at(crate::dbus::PATH, manager).and_then(|b| {
            b.serve_at(
                crate::dbus::logcontrol::PATH,
                crate::dbus::logcontrol::LogControl,
            )
        }),
        Err(e) => Err(e),
    };
    match conn {
        Ok(b) => match b.build().await {
            Ok(c) => Some(c),
            Err(e) => {
                warn!(bus = ?bus, "no D-Bus control (the channels run without it): {e}");
                None
            }
        },
        Err(e) => {
            warn!(bus = ?bus, "no D-Bus control (the channels run without it): {e}");
            None
        }
    }
}

/// The reload SIGHUP asks for: all or nothing, as D-Bus `Reload`. systemd
/// hears RELOADING=1 … READY=1 around it (ExecReload in the unit).
async fn reload_on_hup(registry: Arc<Registry>) {
    notify(&[
        sd_notify::NotifyState::Reloading,
        sd_notify::NotifyState::monotonic_usec_now().unwrap_or(sd_notify::NotifyState::Reloading),
    ]);
    match registry.reload().await {
        Ok((added, removed)) => {
            if let Some(conn) = registry.conn() {
                crate::dbus::announce_reload(conn, &added, &removed).await;
            }
        }
        Err(e) => {
            error!("reload refused, the running channels go on unchanged: {e}")
        }
    }
    notify(&[sd_notify::NotifyState::Ready]);
}

async fn serve(
    config: PathBuf,
    cfg: Config,
    bus: Bus,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    // First, so a SIGTERM during start-up still stops cleanly.
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    // SIGHUP's default action ends the process, and systemd's
    // Restart=on-failure takes that for a clean exit: it reloads instead.
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let registry = Arc::new(Registry::new(config, &cfg));
    let count = registry.start_all(&cfg).await;
    if count == 0 {
        return Err(anyhow!("no channel could be started"));
    }
    if let Some(addr) = metrics {
        let fleet = registry.fleet().map(|f| f.view.clone());
        tokio::spawn(crate::web::serve(addr, registry.views(), fleet));
    }
    if let Some(conn) = connect(&bus, &registry).await {
        if let Some(fleet) = registry.fleet() {
            tokio::spawn(crate::dbus::watch_fleet(conn.clone(), fleet));
        }
        registry.publish_all(conn).await;
        info!(service = crate::dbus::SERVICE, bus = ?bus, "D-Bus control published");
    }
    info!(
        channels = count,
        version = env!("CARGO_PKG_VERSION"),
        "nonstopd running"
    );
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("{count} channel(s) started")),
    ]);

    let main_beat: crate::watchdog::Beat = Arc::new(AtomicU64::new(crate::monotonic_ns()));
    let period = crate::watchdog::period();
    let keepalive = period.and_then(|p| {
        crate::watchdog::Keepalive::start(p, registry.beats(), main_beat.clone())
            .map_err(|e| error!("no watchdog keepalive (systemd will restart nonstopd): {e}"))
            .ok()
    });
    // This loop's turns are the keepalive's "daemon" beat.
    let mut tick = tokio::time::interval(period.map_or(Duration::from_secs(1), |p| {
        (p / 4).max(Duration::from_millis(100))
    }));
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config");
                tokio::spawn(reload_on_hup(registry.clone()));
            }
            _ = tick.tick() => {
                main_beat.store(crate::monotonic_ns(), Ordering::Relaxed);
                // A reload holds the registry: the status waits for the next turn.
                if let Some(line) = registry.try_status() {
                    if line != last_status {
                        notify(&[sd_notify::NotifyState::Status(&line)]);
                        last_status = line;
                    }
                }
            }
        }
    }
    if let Some(k) = &keepalive {
        k.stop();
    }
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: finalizing outputs"),
    ]);
    registry.stop_all().await;
    info!("nonstopd stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> (libc::rlim_t, libc::rlim_t) {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        (lim.rlim_cur, lim.rlim_max)
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let (soft, hard) = limits();
        // Start from a low soft limit, as under systemd (restored at once
        // by the call under test).
        if hard > 512 && soft > 512 {
            let low = libc::rlimit {
                rlim_cur: 512,
                rlim_max: hard,
            };
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        }
        assert_eq!(raise_open_file_limit().unwrap(), hard);
        assert_eq!(limits(), (hard, hard));
    }
}
