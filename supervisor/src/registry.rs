//! The running channels: started from the config, published on D-Bus and
//! to metrics, replaced on reload (an all-or-nothing diff of the
//! `[[channel]]` tables), stopped. The daemon owns one; the D-Bus manager
//! reaches it only by message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::channel::{Channel, Handle};
use crate::config::Config;
use crate::dbus::ManagerRequest;

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

fn status_line(handles: &[&Handle]) -> String {
    handles
        .iter()
        .map(|h| format!("{} {}", h.id, h.snapshot.borrow().status))
        .collect::<Vec<_>>()
        .join("; ")
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
    /// The fleet agent, with `[fleet]` (as the config had it at start: a
    /// reload cannot change it).
    fleet: Option<(crate::config::Fleet, Arc<crate::fleet::Fleet>)>,
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
        if let Some((_, fleet)) = &self.fleet {
            let fence = Arc::new(crate::output::Fence::default());
            channel.join_fleet(fence.clone());
            fleet.add(crate::fleet::ChannelSeat {
                id: ch.id.get_ref().clone(),
                hash: crate::fleet::state::definition_hash(&table),
                spec: ch.fleet.clone(),
                fence,
                commands: handle.commands.clone(),
                epoch_delay: channel.epoch_delay(),
                grid: channel.handover_grid(),
                seamless: channel.handover_seamless(),
            });
        }
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
        if cfg.fleet.as_ref() != self.fleet.as_ref().map(|(f, _)| f) {
            return Err(format!(
                "{}: [fleet] differs from the running one; a reload cannot change it (restart nonstopd, one box at a time)",
                self.config.display()
            ));
        }
        let new_tables = cfg.channel_tables();
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
            if let Some((_, fleet)) = &self.fleet {
                fleet.remove(&id);
            }
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

    /// An empty registry for the config at `config`: alerts as it says.
    pub fn new(config: PathBuf, cfg: &Config) -> Registry {
        let alerts = crate::alerts::Alerts::start(&cfg.alerts);
        let fleet =
            cfg.fleet
                .as_ref()
                .and_then(|f| match crate::fleet::Fleet::start(f, alerts.clone()) {
                    Ok(fleet) => {
                        info!(node = %fleet.node, endpoints = f.endpoints.len(), "fleet: joining");
                        Some((f.clone(), Arc::new(fleet)))
                    }
                    Err(e) => {
                        error!("{e:#}");
                        None
                    }
                });
        Registry {
            fleet,
            config,
            channels: tokio::sync::Mutex::new(Vec::new()),
            conn: tokio::sync::OnceCell::new(),
            views: Default::default(),
            beats: Default::default(),
            alerts,
            output_grace: cfg
                .alerts
                .iter()
                .map(|a| a.output_grace)
                .min()
                .unwrap_or(Duration::from_secs(10)),
        }
    }

    /// Starts every channel of `cfg` that can start: encoder backends are
    /// probed per channel, so one without a usable encoder is reported and
    /// the others still go on air. How many started.
    pub async fn start_all(&self, cfg: &Config) -> usize {
        let table_list = cfg.channel_tables();
        let mut channels = self.channels.lock().await;
        for (c, ch) in cfg.channels.iter().enumerate() {
            let choices = match crate::encode::resolve(cfg, c) {
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
            channels.extend(self.start(cfg, c, choices, table));
        }
        self.sync_views(&channels);
        channels.len()
    }

    /// What metrics and the status page read.
    pub fn views(&self) -> crate::metrics::Views {
        self.views.clone()
    }

    /// The channel loops the watchdog keepalive waits on.
    pub fn beats(&self) -> crate::watchdog::Beats {
        self.beats.clone()
    }

    /// The fleet agent, with `[fleet]`.
    pub fn fleet(&self) -> Option<Arc<crate::fleet::Fleet>> {
        self.fleet.as_ref().map(|(_, f)| f.clone())
    }

    /// The D-Bus connection, once there is one.
    pub fn conn(&self) -> Option<&zbus::Connection> {
        self.conn.get()
    }

    /// Publishes every channel on `conn` (and later ones as they start).
    pub async fn publish_all(&self, conn: zbus::Connection) {
        let _ = self.conn.set(conn);
        let mut channels = self.channels.lock().await;
        for run in channels.iter_mut() {
            self.publish(run).await;
        }
    }

    /// systemd's STATUS= line; `None` while a reload holds the registry.
    pub fn try_status(&self) -> Option<String> {
        let channels = self.channels.try_lock().ok()?;
        Some(Self::handles_status(&channels))
    }

    /// Stops every channel: outputs finalized, tasks awaited.
    pub async fn stop_all(&self) {
        // The others take over at once: the lease is revoked, not left to
        // expire.
        if let Some((_, fleet)) = &self.fleet {
            fleet.stop().await;
        }
        let runs: Vec<Running> = self.channels.lock().await.drain(..).collect();
        for r in &runs {
            let _ = r.stop.send(true);
        }
        for r in runs {
            if let Some(f) = r.forward {
                f.abort();
            }
            let _ = r.task.await;
        }
    }

    /// Answers the D-Bus manager's requests until it goes away. Each on
    /// its own task: a reload in progress holds the registry, and a read
    /// waits for it, as it would for the lock.
    pub async fn serve(self: Arc<Self>, mut requests: mpsc::UnboundedReceiver<ManagerRequest>) {
        while let Some(req) = requests.recv().await {
            let registry = self.clone();
            tokio::spawn(async move {
                match req {
                    ManagerRequest::ChannelIds(tx) => {
                        let _ = tx.send(registry.channel_ids().await);
                    }
                    ManagerRequest::Reload(tx) => {
                        let _ = tx.send(registry.reload().await);
                    }
                }
            });
        }
    }
}
