//! The fleet: channels that survive the loss of a whole box. Every box
//! runs the same config; with `[fleet]` each active-passive channel has
//! one leader among its replicas, elected in etcd under the box's lease
//! (the leader key's revision is the fencing token). Standbys keep the
//! channel warm with their outputs held; the leader's outputs send only
//! until the lease's deadline (`output::Fence`).
//!
//! - `placement`: which boxes run a channel (weighted rendezvous hashing,
//!   the same on every box);
//! - `state`: the keys in etcd, read into plain values;
//! - `decide`: what this box does with a channel, from one read (pure);
//! - `agent`: the thread that holds the lease and carries decisions out:
//!   `etcd` (its calls: connection, lease, member key, reads), `seats`
//!   (each channel's decision carried out: take, resign), `handover`
//!   (the scheduled handover at a GOP boundary),
//!   `asks` (the leader's side of the failsafe), `view` (what it shows);
//! - `failsafe`: the peers' side of the failsafe, and its reasoning.
//!
//! docs/fleet.md has the design, the guarantees and the remaining risks.

mod agent;
mod asks;
pub mod decide;
mod etcd;
pub mod failsafe;
pub mod handover;
pub mod placement;
mod seats;
pub mod state;
mod view;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

use crate::channel::{Command, Role};
use crate::config::{self, ChannelFleet};
use crate::output::Fence;

/// A channel as the fleet handles it.
pub struct ChannelSeat {
    pub id: String,
    /// Its definition's hash ([`state::definition_hash`]).
    pub hash: String,
    pub spec: ChannelFleet,
    pub fence: Arc<Fence>,
    pub commands: mpsc::UnboundedSender<Command>,
    /// The channel's output delay against UTC, ns (`Fanout::epoch_delay`).
    pub epoch_delay: Arc<std::sync::atomic::AtomicI64>,
    /// Where a scheduled handover may cut it (`Channel::handover_grid`).
    pub grid: Duration,
    /// A handover can be scheduled (`Channel::handover_seamless`); else it
    /// is immediate.
    pub seamless: bool,
}

/// A member as `fleet status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    pub name: String,
    pub capacity: u32,
    pub drained: bool,
    /// Its lease is alive (a drained node that is down shows as not).
    pub alive: bool,
    /// Channels it leads.
    pub leads: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelView {
    pub role: Role,
    pub leader: String,
    pub token: i64,
    /// Its replicas, the leader first.
    pub replicas: Vec<String>,
    /// Buffers its fence stopped.
    pub dropped: u64,
    /// Per other box running it: how much later this box emits the same
    /// frame, seconds (negative: earlier). Both run the channel on UTC.
    pub epoch_offsets: BTreeMap<String, f64>,
}

/// The fleet as this box sees it (D-Bus, metrics, the status page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    pub node: String,
    /// The last etcd call succeeded.
    pub etcd: bool,
    pub lease: i64,
    /// Until the lease's deadline (zero without a lease).
    pub lease_left: Duration,
    pub members: Vec<MemberView>,
    pub channels: BTreeMap<String, ChannelView>,
    /// Takeovers by this box, by reason (`start`, `leader-lost`,
    /// `handover`, `rejoin`).
    pub takeovers: BTreeMap<String, u64>,
}

pub type View = Arc<Mutex<FleetView>>;

enum Request {
    Add(ChannelSeat),
    Remove(String),
    Drain {
        node: String,
        on: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The running agent.
pub struct Fleet {
    pub node: String,
    pub view: View,
    tx: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Fleet {
    /// Starts the agent on a thread of its own.
    pub fn start(cfg: &config::Fleet, alerts: crate::alerts::Alerts) -> anyhow::Result<Fleet> {
        let node = cfg.node_name();
        let view: View = Arc::new(Mutex::new(FleetView {
            node: node.clone(),
            ..FleetView::default()
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let agent = agent::Agent::new(cfg.clone(), view.clone(), alerts, rx);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("fleet: cannot build its runtime")?;
        let thread = std::thread::Builder::new()
            .name("fleet".into())
            .spawn(move || rt.block_on(agent.run()))
            .context("fleet: cannot start its thread")?;
        Ok(Fleet {
            node,
            view,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn send(&self, req: Request) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref().is_some_and(|tx| tx.send(req).is_ok())
    }

    pub fn add(&self, seat: ChannelSeat) {
        self.send(Request::Add(seat));
    }

    pub fn remove(&self, id: &str) {
        self.send(Request::Remove(id.to_owned()));
    }

    /// Drains `node` (or undrains it): its channels move to other boxes.
    pub async fn drain(&self, node: &str, on: bool) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        let req = Request::Drain {
            node: node.to_owned(),
            on,
            reply,
        };
        if !self.send(req) {
            return Err("the fleet agent is not running".to_owned());
        }
        answer
            .await
            .map_err(|_| "the fleet agent is not running".to_owned())?
    }

    pub fn view(&self) -> FleetView {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Holds every output, revokes the lease (the others take over at
    /// once rather than after the TTL), and waits for the agent.
    pub async fn stop(&self) {
        // Dropping the only sender ends the agent's loop.
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
