//! The manager object: the channel list, reload, the fleet (members,
//! drains), and its signals. It asks the daemon's registry by message, so
//! it needs nothing of the daemon; the fleet it reads and drains through
//! the agent's handle.

use std::sync::Arc;
use std::time::Duration;

use nonstop_api::model::MemberRow;
use tokio::sync::{mpsc, oneshot};
use zbus::interface;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

use super::{channel_path, Error, PATH};
use crate::fleet::{Fleet, FleetView};
use crate::metrics::member_rows;

/// How often the fleet's view is compared for `PropertiesChanged`.
const FLEET_PERIOD: Duration = Duration::from_millis(250);
/// How long a drain may take before the caller gets `Failed` (the agent
/// gives etcd a third of the TTL; this covers an agent busy with a
/// slow round).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The fleet agent, with `[fleet]`.
    pub fleet: Option<Arc<Fleet>>,
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

    fn fleet_view(&self) -> Option<FleetView> {
        self.fleet.as_ref().map(|f| f.view())
    }

    /// Drains `node` (`on`) or undrains it, through the agent.
    async fn set_drained(&self, node: &str, on: bool) -> Result<(), Error> {
        let fleet = self
            .fleet
            .as_ref()
            .ok_or_else(|| Error::NoFleet(nonstop_api::NO_FLEET_MESSAGE.to_owned()))?;
        let verb = if on { "Drain" } else { "Undrain" };
        if node.is_empty() {
            return Err(Error::InvalidArgument(format!("{verb} needs a node name")));
        }
        if !nonstop_api::valid_node_name(node) {
            return Err(Error::InvalidArgument(format!(
                "\"{node}\" is not a node name: 1 to 64 ASCII letters, digits, '-', '_' or '.'"
            )));
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, fleet.drain(node, on)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(Error::Failed(format!(
                "{} {node}: {why}",
                if on { "drain" } else { "undrain" }
            ))),
            Err(_) => Err(Error::Failed(format!(
                "{} {node}: the fleet agent did not answer within {} s",
                if on { "drain" } else { "undrain" },
                DRAIN_TIMEOUT.as_secs()
            ))),
        }
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

    /// This box's name in the fleet; empty without `[fleet]`.
    #[zbus(property(emits_changed_signal = "const"))]
    fn node_name(&self) -> String {
        self.fleet
            .as_ref()
            .map(|f| f.node.clone())
            .unwrap_or_default()
    }

    /// The fleet agent's last etcd call succeeded (false without `[fleet]`).
    #[zbus(property)]
    fn etcd_reachable(&self) -> bool {
        self.fleet_view().is_some_and(|v| v.etcd)
    }

    /// (name, alive, drained, capacity, channels led) per member of the
    /// fleet; empty without `[fleet]`.
    #[zbus(property)]
    fn fleet_members(&self) -> Vec<MemberRow> {
        self.fleet_view()
            .map(|v| member_rows(&v))
            .unwrap_or_default()
    }

    /// Drains `node` (any box of the fleet, this one too): the channels it
    /// leads move to other boxes and no channel is placed on it.
    async fn drain(&self, node: String) -> Result<(), Error> {
        self.set_drained(&node, true).await
    }

    /// Undrains `node`: it takes channels again.
    async fn undrain(&self, node: String) -> Result<(), Error> {
        self.set_drained(&node, false).await
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

/// Announces the fleet's changes on the manager (`FleetMembers`,
/// `EtcdReachable`), comparing the agent's view every
/// [`FLEET_PERIOD`], until the process ends.
pub async fn watch_fleet(conn: zbus::Connection, fleet: Arc<Fleet>) {
    let Ok(iface) = conn.object_server().interface::<_, Manager>(PATH).await else {
        return;
    };
    let view = fleet.view();
    let mut members = member_rows(&view);
    let mut etcd = view.etcd;
    let mut tick = tokio::time::interval(FLEET_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let view = fleet.view();
        let now = member_rows(&view);
        let em = iface.signal_emitter();
        if now != members {
            members = now;
            let _ = iface.get().await.fleet_members_changed(em).await;
        }
        if view.etcd != etcd {
            etcd = view.etcd;
            let _ = iface.get().await.etcd_reachable_changed(em).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::MemberView;
    use zbus::object_server::Interface;

    fn manager() -> Manager {
        let (registry, _rx) = mpsc::unbounded_channel();
        Manager {
            started_at: 1,
            registry,
            fleet: None,
        }
    }

    /// The members (name, kind, signature) of the manager's introspection.
    fn members() -> Vec<(String, String)> {
        let mut xml = String::new();
        manager().introspect_to_writer(&mut xml, 0);
        let mut found = Vec::new();
        for kind in ["property", "method", "signal"] {
            for m in xml.split(&format!("<{kind} ")).skip(1) {
                let name = m.split("name=\"").nth(1).and_then(|n| n.split('"').next());
                found.push((name.unwrap_or_default().to_owned(), kind.to_owned()));
            }
        }
        found
    }

    #[test]
    fn the_fleet_is_on_the_manager() {
        let found = members();
        for (name, kind) in [
            ("NodeName", "property"),
            ("EtcdReachable", "property"),
            ("FleetMembers", "property"),
            ("Drain", "method"),
            ("Undrain", "method"),
        ] {
            assert!(
                found.contains(&(name.to_owned(), kind.to_owned())),
                "no {kind} {name} in {found:?}"
            );
        }
        let mut xml = String::new();
        manager().introspect_to_writer(&mut xml, 0);
        assert!(
            xml.contains(r#"name="FleetMembers" type="a(sbbuu)""#),
            "{xml}"
        );
        assert!(xml.contains(r#"name="NodeName" type="s""#), "{xml}");
    }

    #[tokio::test]
    async fn without_a_fleet_the_fleet_calls_say_so() {
        let m = manager();
        assert_eq!(m.node_name(), "");
        assert!(!m.etcd_reachable());
        assert!(m.fleet_members().is_empty());
        for r in [
            m.drain("box-b".into()).await,
            m.undrain("box-b".into()).await,
            m.drain(String::new()).await,
        ] {
            match r {
                Err(Error::NoFleet(msg)) => assert_eq!(msg, "this nonstopd runs no fleet"),
                other => panic!("{other:?}"),
            }
        }
        use zbus::DBusError as _;
        assert_eq!(
            Error::NoFleet(String::new()).name().as_str(),
            "org.nonstop.Supervisor1.Error.NoFleet"
        );
    }

    /// With a fleet whose etcd is not there: the node is shown, names are
    /// checked before etcd is asked, and etcd's silence is `Failed`.
    #[tokio::test]
    async fn drains_check_the_name_and_say_why_etcd_did_not_take_them() {
        let cfg: crate::config::Fleet =
            toml::from_str("endpoints = [\"http://127.0.0.1:9\"]\nnode = \"box-a\"\nttl = \"1s\"")
                .expect("a [fleet] table");
        let fleet =
            Arc::new(Fleet::start(&cfg, crate::alerts::Alerts::start(&[])).expect("starts"));
        let m = Manager {
            fleet: Some(fleet.clone()),
            ..manager()
        };
        assert_eq!(m.node_name(), "box-a");
        for bad in ["", "box a", "box/b"] {
            match m.drain(bad.into()).await {
                Err(Error::InvalidArgument(_)) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let started = std::time::Instant::now();
        match m.undrain("box-b".into()).await {
            Err(Error::Failed(msg)) => assert!(msg.starts_with("undrain box-b: "), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < DRAIN_TIMEOUT + Duration::from_secs(1));
        fleet.stop().await;
    }

    #[test]
    fn members_become_rows() {
        let view = FleetView {
            node: "a".into(),
            members: vec![
                MemberView {
                    name: "a".into(),
                    capacity: 2,
                    drained: false,
                    alive: true,
                    leads: 3,
                },
                MemberView {
                    name: "b".into(),
                    capacity: 0,
                    drained: true,
                    alive: false,
                    leads: 0,
                },
            ],
            ..FleetView::default()
        };
        assert_eq!(
            member_rows(&view),
            vec![
                MemberRow {
                    name: "a".into(),
                    alive: true,
                    drained: false,
                    capacity: 2,
                    leads: 3
                },
                MemberRow {
                    name: "b".into(),
                    alive: false,
                    drained: true,
                    capacity: 0,
                    leads: 0
                },
            ]
        );
    }
}
