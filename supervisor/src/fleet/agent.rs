//! The fleet's agent: one thread of its own (its own runtime, so that no
//! channel's work can delay a lease renewal) that holds this box's lease
//! in etcd, publishes its membership, reads the fleet every tick and
//! carries out each channel's [`Decision`]. The fence of a channel it
//! leads is opened until the lease's deadline: the send time of the last
//! confirmed renewal plus the granted TTL, less a margin. etcd renews
//! somewhere between send and answer, so the lease cannot expire before
//! that deadline; the outputs stop by themselves when it passes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::failsafe;
use super::state::{self, Observed};
use super::{ChannelSeat, FleetView, Request};
use crate::channel::{Command, Role, Seat};
use crate::output::boottime_ns;

/// How often the agent reads the fleet and acts.
pub(super) const TICK: Duration = Duration::from_millis(100);
/// A lower-ranked replica waits this long per rank before it takes a
/// channel nobody leads (the better ones go first).
pub(super) const STAGGER: Duration = Duration::from_millis(300);

pub(super) struct Session {
    pub(super) lease: i64,
    /// As granted (etcd raises a TTL below its minimum).
    pub(super) ttl: Duration,
    pub(super) keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    /// `boottime_ns` when the last confirmed renewal was sent.
    pub(super) confirmed_ns: u64,
    pub(super) next_renew: Instant,
}

impl Session {
    /// Until when the lease certainly holds, less a margin for the rates
    /// of two clocks (boottime here, etcd's monotonic there).
    pub(super) fn deadline_ns(&self) -> u64 {
        self.confirmed_ns + self.ttl.as_nanos() as u64 - margin(self.ttl)
    }
}

pub(super) struct Entry {
    pub(super) seat: ChannelSeat,
    pub(super) sent: Option<Seat>,
    /// Until when the failsafe's last round lets it send (boottime ns;
    /// 0: no round confirmed).
    pub(super) failsafe_ns: u64,
    /// Since when this box has been a replica in line to take the channel.
    pub(super) waiting_since: Option<Instant>,
    /// A scheduled handover this box is carrying out as the old leader.
    pub(super) handing: Option<super::handover::Handing>,
    /// The last leader seen, and whether its box was alive when it went.
    pub(super) last_leader: Option<String>,
}

pub(super) struct Agent {
    pub(super) cfg: crate::config::Fleet,
    pub(super) node: String,
    pub(super) prefix: String,
    pub(super) client: Option<Client>,
    pub(super) session: Option<Session>,
    pub(super) channels: BTreeMap<String, Entry>,
    pub(super) obs: Observed,
    pub(super) members_seen: BTreeSet<String>,
    pub(super) member_dirty: bool,
    pub(super) view: Arc<Mutex<FleetView>>,
    pub(super) alerts: crate::alerts::Alerts,
    pub(super) raised: BTreeSet<(String, String)>,
    pub(super) rx: mpsc::UnboundedReceiver<Request>,
    pub(super) takeovers: BTreeMap<String, u64>,
    pub(super) etcd_ok: bool,
    /// When etcd was last complained about (one warning a few seconds).
    pub(super) warned: Option<Instant>,
    pub(super) started_us: u64,
    pub(super) peers: failsafe::Shared,
    pub(super) http: reqwest::Client,
    pub(super) last_round: Option<Instant>,
    /// When the channels' epoch delays were last published.
    pub(super) epoch_at: Option<Instant>,
}

/// The margin taken off a deadline for the rates of two clocks.
pub(super) fn margin(ttl: Duration) -> u64 {
    (ttl.as_nanos() as u64 / 10).min(200_000_000)
}

impl Agent {
    pub(super) fn new(
        cfg: crate::config::Fleet,
        view: Arc<Mutex<FleetView>>,
        alerts: crate::alerts::Alerts,
        rx: mpsc::UnboundedReceiver<Request>,
    ) -> Agent {
        let node = cfg.node_name();
        Agent {
            node: node.clone(),
            prefix: cfg.key_prefix(),
            cfg,
            client: None,
            session: None,
            channels: BTreeMap::new(),
            obs: Observed::default(),
            members_seen: BTreeSet::new(),
            member_dirty: true,
            view,
            alerts,
            raised: BTreeSet::new(),
            rx,
            takeovers: BTreeMap::new(),
            etcd_ok: false,
            warned: None,
            started_us: nonstop_api::now_us(),
            peers: failsafe::shared(&node),
            http: reqwest::Client::new(),
            last_round: None,
            epoch_at: None,
        }
    }

    /// One etcd call, bounded: a third of the TTL, so that a dead member
    /// leaves time for a retry on another before the deadline.
    pub(super) fn budget(&self) -> Duration {
        (self.cfg.ttl / 3).max(Duration::from_millis(200))
    }

    pub(super) async fn run(mut self) {
        if let Some(addr) = self
            .cfg
            .peer
            .as_ref()
            .and_then(|p| p.get_ref().parse().ok())
        {
            tokio::spawn(failsafe::serve(addr, self.peers.clone()));
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.step().await,
                req = self.rx.recv() => match req {
                    Some(req) => self.request(req).await,
                    None => break,
                },
            }
        }
        self.leave().await;
    }

    pub(super) async fn request(&mut self, req: Request) {
        match req {
            Request::Add(seat) => {
                self.channels.insert(
                    seat.id.clone(),
                    Entry {
                        seat,
                        sent: None,
                        failsafe_ns: 0,
                        waiting_since: None,
                        handing: None,
                        last_leader: None,
                    },
                );
                self.member_dirty = true;
            }
            Request::Remove(id) => {
                if let Some(e) = self.channels.remove(&id) {
                    e.seat.fence.close();
                    self.resign(&id, None).await;
                }
                self.member_dirty = true;
            }
            Request::Drain { node, on, reply } => {
                let r = self.drain(&node, on).await;
                let _ = reply.send(r);
            }
        }
    }

    pub(super) async fn drain(&mut self, node: &str, on: bool) -> Result<(), String> {
        let key = state::drain_key(&self.prefix, node);
        let budget = self.budget();
        let client = self.client.as_mut().ok_or("etcd is not reachable")?;
        let call = async {
            if on {
                client.put(key, "1", None).await.map(|_| ())
            } else {
                client.delete(key, None).await.map(|_| ())
            }
        };
        match tokio::time::timeout(budget, call).await {
            Ok(Ok(())) => {
                info!(node = %node, drained = on, "fleet: {} {node}", if on { "drain" } else { "undrain" });
                Ok(())
            }
            Ok(Err(e)) => Err(format!("etcd refused: {e}")),
            Err(_) => Err("etcd did not answer in time".into()),
        }
    }

    pub(super) fn complain(&mut self, what: &str, e: impl std::fmt::Display) {
        self.etcd_ok = false;
        if self
            .warned
            .is_none_or(|w| w.elapsed() >= Duration::from_secs(5))
        {
            self.warned = Some(Instant::now());
            warn!(node = %self.node, "fleet: {what}: {e}");
        }
    }

    pub(super) async fn step(&mut self) {
        if let Some(mut client) = self.connect().await {
            self.keep_lease(&mut client).await;
            self.publish_member(&mut client).await;
            if self.session.is_some() && self.read(&mut client).await {
                // Decisions are taken only on a read that shows this box
                // under its current lease: one without (its member key's
                // put failed, or raced the read) would have it judge itself
                // gone, and stop its channels.
                let lease = self.session.as_ref().map_or(0, |s| s.lease);
                let here = self
                    .obs
                    .members
                    .iter()
                    .any(|m| m.name == self.node && m.lease == lease);
                if here {
                    self.members_changed();
                    let ids: Vec<String> = self.channels.keys().cloned().collect();
                    for id in ids {
                        self.act(&mut client, &id).await;
                    }
                    self.publish_epochs(&mut client).await;
                } else {
                    self.member_dirty = true;
                }
            }
        }
        let ids: Vec<String> = self.channels.keys().cloned().collect();
        for id in ids {
            // A handover whose end passed while etcd was away ends too.
            self.handing_over(&id);
        }
        self.failsafe().await;
        // The lease may have run out unconfirmed: whatever etcd says later,
        // nothing of this box may still be leading (but what the failsafe
        // still covers).
        if let Some(s) = &self.session {
            if boottime_ns() >= s.deadline_ns() {
                warn!(node = %self.node, "fleet: no lease renewal confirmed in time; asking for a new lease");
                self.session = None;
                self.lose_all("lease deadline passed");
            }
        }
        self.open_fences();
        self.publish_view();
    }

    /// Every channel it leads and the failsafe does not cover: held at
    /// once.
    pub(super) fn lose_all(&mut self, why: &str) {
        let now = boottime_ns();
        for (id, e) in self.channels.iter_mut() {
            if e.sent.as_ref().is_some_and(|s| s.role == Role::Active)
                && e.seat.spec.mode == crate::config::FleetMode::ActivePassive
                && e.failsafe_ns <= now
            {
                self.peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_busy(id, false);
                e.seat.fence.close();
                warn!(channel = %id, reason = why, "fleet: outputs held");
                let seat = Seat::leaderless();
                let _ = e.seat.commands.send(Command::SetSeat(seat.clone()));
                e.sent = Some(seat);
            }
        }
    }

    pub(super) fn open_fences(&self) {
        let until = self.session.as_ref().map_or(0, Session::deadline_ns);
        for e in self.channels.values() {
            match &e.sent {
                Some(s) if s.role == Role::Active => {
                    if e.seat.spec.mode == crate::config::FleetMode::ActivePassive {
                        e.seat.fence.open_until(until.max(e.failsafe_ns));
                    } else {
                        e.seat.fence.open_until(u64::MAX);
                    }
                }
                _ => e.seat.fence.close(),
            }
        }
    }

    pub(super) fn members_changed(&mut self) {
        let now: BTreeSet<String> = self.obs.members.iter().map(|m| m.name.clone()).collect();
        for gone in self
            .members_seen
            .difference(&now)
            .cloned()
            .collect::<Vec<_>>()
        {
            if gone == self.node {
                continue;
            }
            let summary = format!("fleet: node {gone} left the fleet (its lease ended: expired, or revoked as it stopped)");
            warn!(node = %self.node, lost = %gone, "{summary}");
            self.alert("", "node-lost", &gone, true, summary);
        }
        for back in now
            .difference(&self.members_seen)
            .cloned()
            .collect::<Vec<_>>()
        {
            if back != self.node {
                info!(node = %self.node, member = %back, "fleet: node joined");
            }
            self.alert(
                "",
                "node-lost",
                &back,
                false,
                format!("fleet: node {back} is back"),
            );
        }
        self.members_seen = now;
    }

    pub(super) fn alert(
        &mut self,
        channel: &str,
        kind: &str,
        target: &str,
        raised: bool,
        summary: String,
    ) {
        let key = (kind.to_owned(), format!("{channel}/{target}"));
        let changed = if raised {
            self.raised.insert(key)
        } else {
            self.raised.remove(&key)
        };
        if changed {
            self.alerts.send(crate::alerts::Alert {
                channel: channel.to_owned(),
                target: target.to_owned(),
                kind: kind.to_owned(),
                raised,
                time_us: nonstop_api::now_us(),
                summary,
            });
        }
    }

    /// Leaving on shutdown: outputs held, the lease revoked so the others
    /// take over at once rather than after the TTL.
    pub(super) async fn leave(&mut self) {
        for e in self.channels.values() {
            e.seat.fence.close();
        }
        if let (Some(client), Some(s)) = (self.client.as_mut(), self.session.take()) {
            let _ = tokio::time::timeout(Duration::from_millis(500), client.lease_revoke(s.lease))
                .await;
            info!(node = %self.node, "fleet: left (lease revoked)");
        }
    }
}
