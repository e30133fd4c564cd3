//! The manager object: the channel list, reload, and its signals. It asks
//! the daemon's registry by message, so it needs nothing of the daemon.

use tokio::sync::{mpsc, oneshot};
use zbus::interface;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::{channel_path, Error, PATH};

/// What a reload did (ids added, ids removed), or why it changed nothing.
pub type Reloaded = Result<(Vec<String>, Vec<String>), String>;

/// What the manager object asks of the daemon's registry of running
/// channels: by message, so the D-Bus side needs nothing of the daemon.
#[derive(Debug)]
pub enum ManagerRequest {
    /// The ids of the running channels, in config order.
    ChannelIds(oneshot::Sender<Vec<String>>),
    /// An all-or-nothing reload: the ids added and removed, or why not.
    Reload(oneshot::Sender<Reloaded>),
}

pub struct Manager {
    pub started_at: u64,
    pub registry: mpsc::UnboundedSender<ManagerRequest>,
}

impl Manager {
    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> ManagerRequest,
    ) -> Result<T, Error> {
        let stopping = || Error::Busy("nonstopd is stopping".into());
        let (tx, rx) = oneshot::channel();
        self.registry.send(request(tx)).map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())
    }

    async fn channel_ids(&self) -> Result<Vec<String>, Error> {
        self.ask(ManagerRequest::ChannelIds).await
    }
}

#[interface(name = "org.nonstop.Supervisor1")]
impl Manager {
    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// When nonstopd started, µs since the epoch (as systemd's timestamps).
    #[zbus(property(emits_changed_signal = "const"))]
    fn started_at(&self) -> u64 {
        self.started_at
    }

    #[zbus(property)]
    async fn channels(&self) -> Vec<OwnedObjectPath> {
        self.channel_ids()
            .await
            .unwrap_or_default()
            .iter()
            .map(|id| channel_path(id))
            .collect()
    }

    async fn get_channel(&self, id: String) -> Result<OwnedObjectPath, Error> {
        let ids = self.channel_ids().await?;
        if ids.contains(&id) {
            Ok(channel_path(&id))
        } else {
            Err(Error::NoSuchChannel(format!(
                "no channel \"{id}\"; there are {}",
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            )))
        }
    }

    /// Re-reads the config: unchanged channels keep running untouched,
    /// changed ones are rebuilt, removed ones stop, new ones start. All or
    /// nothing: an invalid config changes nothing.
    async fn reload(
        &self,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let (added, removed) = self
            .ask(ManagerRequest::Reload)
            .await?
            .map_err(Error::InvalidArgument)?;
        self.announce(&emitter, &added, &removed).await;
        Ok(())
    }

    #[zbus(signal)]
    async fn channel_added(
        emitter: &SignalEmitter<'_>,
        channel: ObjectPath<'_>,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn channel_removed(
        emitter: &SignalEmitter<'_>,
        channel: ObjectPath<'_>,
    ) -> zbus::Result<()>;
}

impl Manager {
    /// Signals what a reload changed, whoever asked for it.
    async fn announce(&self, emitter: &SignalEmitter<'_>, added: &[String], removed: &[String]) {
        for id in removed {
            let _ = Manager::channel_removed(emitter, channel_path(id).as_ref()).await;
        }
        for id in added {
            let _ = Manager::channel_added(emitter, channel_path(id).as_ref()).await;
        }
        if !added.is_empty() || !removed.is_empty() {
            let _ = self.channels_changed(emitter).await;
        }
    }
}

/// After a reload by SIGHUP: the same signals as the D-Bus `Reload` sends.
pub async fn announce_reload(conn: &zbus::Connection, added: &[String], removed: &[String]) {
    let Ok(iface) = conn.object_server().interface::<_, Manager>(PATH).await else {
        return;
    };
    let emitter = iface.signal_emitter();
    iface.get().await.announce(emitter, added, removed).await;
}
