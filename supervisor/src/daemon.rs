//! The process: loads the config, runs every channel on one tokio event
//! loop, talks to systemd (readiness, watchdog, status) and stops cleanly
//! on SIGTERM / SIGINT.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
        .with_writer(crate::logline::OneLine)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // journald stamps every line itself.
    if under_journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
    // GLib's warnings and criticals (GStreamer's libraries) too, limited.
    crate::glog::install();
}

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

/// Loads `path`, or explains every problem in it.
/// The config at `path`, with the checks only the encoders can make.
pub fn load_checked(path: &Path) -> Result<Config, Vec<crate::config::ConfigError>> {
    let cfg = Config::load(path)?;
    let errors = crate::encode::check_backends(&cfg);
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

pub fn load(path: &Path) -> anyhow::Result<Config> {
    load_checked(path).map_err(|errors| {
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

fn status_line(handles: &[&Handle]) -> String {
    handles
        .iter()
        .map(|h| format!("{} {}", h.id, h.snapshot.borrow().status))
        .collect::<Vec<_>>()
        .join("; ")
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

/// One running channel.
struct Running {
    handle: Handle,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// Its `[[channel]]` table as written: equal tables mean "unchanged"
    /// on reload.
    table: toml::Value,
    forward: Option<tokio::task::JoinHandle<()>>,
}

/// The running channels, shared by the event loop and the D-Bus manager.
pub struct Registry {
    config: PathBuf,
    channels: tokio::sync::Mutex<Vec<Running>>,
    conn: tokio::sync::OnceCell<zbus::Connection>,
    /// What metrics and the status page read (kept in step below).
    views: crate::metrics::Views,
    /// The channel loops the watchdog keepalive waits on (kept in step).
    beats: crate::watchdog::Beats,
    alerts: crate::alerts::Alerts,
    output_grace: Duration,
}

/// The `[[channel]]` tables of a config file by id, as written.
fn tables(path: &Path) -> Result<Vec<(String, toml::Value)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(doc
        .get("channel")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| Some((t.get("id")?.as_str()?.to_owned(), t.clone())))
                .collect()
        })
        .unwrap_or_default())
}

impl Registry {
    fn sync_views(&self, channels: &[Running]) {
        *self.beats.lock().unwrap_or_else(|e| e.into_inner()) = channels
            .iter()
            .map(|r| (r.handle.id.clone(), r.handle.heartbeat.clone()))
            .collect();
        *self.views.lock().unwrap_or_else(|e| e.into_inner()) = channels
            .iter()
            .map(|r| crate::metrics::View {
                id: r.handle.id.clone(),
                snapshot: r.handle.snapshot.clone(),
                thumbs: r.handle.thumbs.clone(),
            })
            .collect();
    }

    pub async fn channel_ids(&self) -> Vec<String> {
        self.channels
            .lock()
            .await
            .iter()
            .map(|r| r.handle.id.clone())
            .collect()
    }

    fn handles_status(channels: &[Running]) -> String {
        status_line(&channels.iter().map(|r| &r.handle).collect::<Vec<_>>())
    }

    /// Builds and starts channel `c` of `cfg` (encoders already resolved).
    fn start(
        &self,
        cfg: &Config,
        c: usize,
        choices: Vec<Vec<crate::encode::probe::Choice>>,
        table: toml::Value,
    ) -> Option<Running> {
        let ch = &cfg.channels[c];
        for (e, enc) in ch.encoders.iter().zip(&choices) {
            for (i, choice) in enc.iter().enumerate() {
                info!(channel = %ch.id.get_ref(), encoder = e.id(), instance = if i == 0 { "primary" } else { "backup" },
                    backend = choice.plan.backend.name(), element = choice.plan.factory, why = %choice.why, "encoder backend");
            }
        }
        let (mut channel, handle) = Channel::new(ch.clone(), choices);
        channel.set_alerts(self.alerts.clone(), self.output_grace);
        // A channel that cannot be built is reported; the others go on air.
        match channel.start() {
            Ok(()) => {
                let (stop, stop_rx) = watch::channel(false);
                let task = tokio::spawn(channel.run(stop_rx));
                Some(Running {
                    handle,
                    stop,
                    task,
                    table,
                    forward: None,
                })
            }
            Err(e) => {
                error!(channel = %handle.id, "channel not started: {e:#}");
                None
            }
        }
    }

    /// Puts a channel's object on the bus (if there is one).
    async fn publish(&self, run: &mut Running) {
        let Some(conn) = self.conn.get() else {
            return;
        };
        let path = crate::dbus::channel_path(&run.handle.id);
        let obj = crate::dbus::ChannelObject::new(
            run.handle.id.clone(),
            run.handle.commands.clone(),
            run.handle.snapshot.clone(),
        );
        let server = conn.object_server();
        if let Err(e) = server.at(&path, obj).await {
            warn!(channel = %run.handle.id, "cannot publish on D-Bus: {e}");
            return;
        }
        if let Ok(iface) = server
            .interface::<_, crate::dbus::ChannelObject>(&path)
            .await
        {
            run.forward = Some(tokio::spawn(crate::dbus::forward(
                iface,
                run.handle.snapshot.clone(),
                run.handle.events.subscribe(),
            )));
        }
    }

    async fn unpublish(&self, run: &mut Running) {
        if let Some(f) = run.forward.take() {
            f.abort();
        }
        if let Some(conn) = self.conn.get() {
            let path = crate::dbus::channel_path(&run.handle.id);
            let _ = conn
                .object_server()
                .remove::<crate::dbus::ChannelObject, _>(&path)
                .await;
        }
    }

    /// Ends a channel cleanly (EOS through its outputs), bounded.
    async fn stop(run: Running) {
        let _ = run.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(6), run.task)
            .await
            .is_err()
        {
            warn!(channel = %run.handle.id, "channel did not stop within 6s");
        }
    }

    /// Re-reads the config: unchanged channels keep running untouched,
    /// changed ones are rebuilt, removed ones stop, new ones start. An
    /// invalid config (or an encoder that cannot be resolved) changes
    /// nothing. Returns the ids added and removed.
    pub async fn reload(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let cfg = load(&self.config).map_err(|e| format!("{e:#}"))?;
        let new_tables = tables(&self.config)?;
        let mut channels = self.channels.lock().await;
        // Everything that must start is resolved before anything stops.
        let mut plan = Vec::new();
        for (c, ch) in cfg.channels.iter().enumerate() {
            let id = ch.id.get_ref();
            let table = new_tables
                .iter()
                .find(|(i, _)| i == id)
                .map(|(_, t)| t.clone())
                .unwrap_or(toml::Value::Boolean(false));
            let unchanged = channels
                .iter()
                .any(|r| &r.handle.id == id && r.table == table);
            if unchanged {
                continue;
            }
            let choices = crate::encode::resolve(&cfg, c).map_err(|errs| {
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            plan.push((c, choices, table));
        }
        let wanted: Vec<&str> = cfg
            .channels
            .iter()
            .map(|c| c.id.get_ref().as_str())
            .collect();
        let before: Vec<String> = channels.iter().map(|r| r.handle.id.clone()).collect();
        let rebuild: Vec<String> = plan
            .iter()
            .map(|(c, _, _)| cfg.channels[*c].id.get_ref().clone())
            .collect();
        let mut kept = Vec::new();
        for mut run in channels.drain(..) {
            let id = run.handle.id.clone();
            if wanted.contains(&id.as_str()) && !rebuild.contains(&id) {
                kept.push(run);
                continue;
            }
            self.unpublish(&mut run).await;
            info!(channel = %id, "reload: stopping");
            Registry::stop(run).await;
        }
        for (c, choices, table) in plan {
            let id = cfg.channels[c].id.get_ref().clone();
            let verb = if before.contains(&id) {
                "rebuilding"
            } else {
                "starting"
            };
            info!(channel = %id, "reload: {verb}");
            if let Some(mut run) = self.start(&cfg, c, choices, table) {
                self.publish(&mut run).await;
                kept.push(run);
            }
        }
        // Config order.
        kept.sort_by_key(|r| wanted.iter().position(|w| *w == r.handle.id));
        let now: Vec<String> = kept.iter().map(|r| r.handle.id.clone()).collect();
        *channels = kept;
        self.sync_views(&channels);
        let added: Vec<String> = now
            .iter()
            .filter(|i| !before.contains(i))
            .cloned()
            .collect();
        let removed: Vec<String> = before
            .iter()
            .filter(|i| !now.contains(i))
            .cloned()
            .collect();
        let rebuilt: Vec<&String> = rebuild.iter().filter(|i| before.contains(i)).collect();
        info!(added = ?added, removed = ?removed, rebuilt = ?rebuilt, "config reloaded");
        Ok((added, removed))
    }
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
    let (requests, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let served = registry.clone();
    // Each request on its own task: a reload in progress holds the
    // registry, and a read waits for it, as it would for the lock.
    tokio::spawn(async move {
        while let Some(req) = incoming.recv().await {
            let registry = served.clone();
            tokio::spawn(async move {
                match req {
                    crate::dbus::ManagerRequest::ChannelIds(tx) => {
                        let _ = tx.send(registry.channel_ids().await);
                    }
                    crate::dbus::ManagerRequest::Reload(tx) => {
                        let _ = tx.send(registry.reload().await);
                    }
                }
            });
        }
    });
    let manager = crate::dbus::Manager {
        started_at: nonstop_api::now_us(),
        registry: requests,
    };
    let conn = match builder.and_then(|b| b.name(crate::dbus::SERVICE)) {
        Ok(b) => b.serve_at(crate::dbus::PATH, manager),
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
            if let Some(conn) = registry.conn.get() {
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
    let registry = Arc::new(Registry {
        config: config.clone(),
        channels: tokio::sync::Mutex::new(Vec::new()),
        conn: tokio::sync::OnceCell::new(),
        views: Default::default(),
        beats: Default::default(),
        alerts: crate::alerts::Alerts::start(&cfg.alerts),
        output_grace: cfg
            .alerts
            .iter()
            .map(|a| a.output_grace)
            .min()
            .unwrap_or(Duration::from_secs(10)),
    });
    let table_list = tables(&config).unwrap_or_default();
    {
        let mut channels = registry.channels.lock().await;
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
            let table = table_list
                .iter()
                .find(|(i, _)| i == ch.id.get_ref())
                .map(|(_, t)| t.clone())
                .unwrap_or(toml::Value::Boolean(false));
            channels.extend(registry.start(&cfg, c, choices, table));
        }
        if channels.is_empty() {
            return Err(anyhow!("no channel could be started"));
        }
        registry.sync_views(&channels);
    }
    if let Some(addr) = metrics {
        tokio::spawn(crate::web::serve(addr, registry.views.clone()));
    }
    if let Some(conn) = connect(&bus, &registry).await {
        let _ = registry.conn.set(conn);
        let mut channels = registry.channels.lock().await;
        for run in channels.iter_mut() {
            registry.publish(run).await;
        }
        info!(service = crate::dbus::SERVICE, bus = ?bus, "D-Bus control published");
    }
    let count = registry.channels.lock().await.len();
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
        crate::watchdog::Keepalive::start(p, registry.beats.clone(), main_beat.clone())
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
                if let Ok(channels) = registry.channels.try_lock() {
                    let line = Registry::handles_status(&channels);
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
    let runs: Vec<Running> = registry.channels.lock().await.drain(..).collect();
    for r in &runs {
        let _ = r.stop.send(true);
    }
    for r in runs {
        if let Some(f) = r.forward {
            f.abort();
        }
        let _ = r.task.await;
    }
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
