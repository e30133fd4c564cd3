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

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::decide::{decide, replicas, Decision, Why};
use super::failsafe::{self, Ask};
use super::state::{self, Kv, LeaderRecord, MemberRecord, Observed};
use super::{ChannelSeat, ChannelView, FleetView, MemberView, Request};
use crate::channel::{Command, Role, Seat};
use crate::output::boottime_ns;

/// How often the agent reads the fleet and acts.
const TICK: Duration = Duration::from_millis(100);
/// A lower-ranked replica waits this long per rank before it takes a
/// channel nobody leads (the better ones go first).
const STAGGER: Duration = Duration::from_millis(300);

struct Session {
    lease: i64,
    /// As granted (etcd raises a TTL below its minimum).
    ttl: Duration,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
    /// `boottime_ns` when the last confirmed renewal was sent.
    confirmed_ns: u64,
    next_renew: Instant,
}

impl Session {
    /// Until when the lease certainly holds, less a margin for the rates
    /// of two clocks (boottime here, etcd's monotonic there).
    fn deadline_ns(&self) -> u64 {
        self.confirmed_ns + self.ttl.as_nanos() as u64 - margin(self.ttl)
    }
}

struct Entry {
    seat: ChannelSeat,
    sent: Option<Seat>,
    /// Until when the failsafe's last round lets it send (boottime ns;
    /// 0: no round confirmed).
    failsafe_ns: u64,
    /// Since when this box has been a replica in line to take the channel.
    waiting_since: Option<Instant>,
    /// The last leader seen, and whether its box was alive when it went.
    last_leader: Option<String>,
}

pub(super) struct Agent {
    cfg: crate::config::Fleet,
    node: String,
    prefix: String,
    client: Option<Client>,
    session: Option<Session>,
    channels: BTreeMap<String, Entry>,
    obs: Observed,
    members_seen: BTreeSet<String>,
    member_dirty: bool,
    view: Arc<Mutex<FleetView>>,
    alerts: crate::alerts::Alerts,
    raised: BTreeSet<(String, String)>,
    rx: mpsc::UnboundedReceiver<Request>,
    takeovers: BTreeMap<String, u64>,
    etcd_ok: bool,
    /// When etcd was last complained about (one warning a few seconds).
    warned: Option<Instant>,
    started_us: u64,
    peers: failsafe::Shared,
    http: reqwest::Client,
    last_round: Option<Instant>,
    /// When the channels' epoch delays were last published.
    epoch_at: Option<Instant>,
}

/// The margin taken off a deadline for the rates of two clocks.
fn margin(ttl: Duration) -> u64 {
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
    fn budget(&self) -> Duration {
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

    async fn request(&mut self, req: Request) {
        match req {
            Request::Add(seat) => {
                self.channels.insert(
                    seat.id.clone(),
                    Entry {
                        seat,
                        sent: None,
                        failsafe_ns: 0,
                        waiting_since: None,
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

    async fn drain(&mut self, node: &str, on: bool) -> Result<(), String> {
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

    fn complain(&mut self, what: &str, e: impl std::fmt::Display) {
        self.etcd_ok = false;
        if self
            .warned
            .is_none_or(|w| w.elapsed() >= Duration::from_secs(5))
        {
            self.warned = Some(Instant::now());
            warn!(node = %self.node, "fleet: {what}: {e}");
        }
    }

    async fn connect(&mut self) -> Option<Client> {
        if let Some(c) = &self.client {
            return Some(c.clone());
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.budget())
            .with_keep_alive(Duration::from_secs(1), self.budget());
        if let (Some(u), Some(p)) = (&self.cfg.username, &self.cfg.password) {
            opts = opts.with_user(u.clone(), p.clone());
        }
        if let Some(ca) = &self.cfg.ca {
            let mut tls = TlsOptions::new();
            match std::fs::read(ca.get_ref()) {
                Ok(pem) => tls = tls.ca_certificate(Certificate::from_pem(pem)),
                Err(e) => {
                    self.complain(&format!("cannot read {}", ca.get_ref()), e);
                    return None;
                }
            }
            if let (Some(c), Some(k)) = (&self.cfg.cert, &self.cfg.key) {
                match (std::fs::read(c.get_ref()), std::fs::read(k.get_ref())) {
                    (Ok(c), Ok(k)) => tls = tls.identity(Identity::from_pem(c, k)),
                    (Err(e), _) | (_, Err(e)) => {
                        self.complain("cannot read the client certificate or key", e);
                        return None;
                    }
                }
            }
            opts = opts.with_tls(tls);
        }
        let endpoints: Vec<String> = self
            .cfg
            .endpoints
            .iter()
            .map(|e| e.get_ref().clone())
            .collect();
        match tokio::time::timeout(self.budget() * 3, Client::connect(endpoints, Some(opts))).await
        {
            Ok(Ok(c)) => {
                self.client = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.complain("cannot connect to etcd", e);
                None
            }
            Err(_) => {
                self.complain("cannot connect to etcd", "timed out");
                None
            }
        }
    }

    /// Grants the lease (a new session) or renews it when due.
    async fn keep_lease(&mut self, client: &mut Client) {
        let budget = self.budget();
        let Some(s) = self.session.as_mut() else {
            let sent = boottime_ns();
            let ttl = self.cfg.ttl.as_secs() as i64;
            match tokio::time::timeout(budget, client.lease_grant(ttl, None)).await {
                Ok(Ok(g)) => {
                    if g.ttl() != ttl {
                        warn!(node = %self.node, asked = ttl, granted = g.ttl(), "fleet: etcd granted another lease TTL than asked (its minimum is 1.5 × its election timeout; see docs/fleet.md)");
                    }
                    info!(node = %self.node, lease = g.id(), ttl = g.ttl(), "fleet: lease granted");
                    self.session = Some(Session {
                        lease: g.id(),
                        ttl: Duration::from_secs(g.ttl().max(1) as u64),
                        keeper: None,
                        confirmed_ns: sent,
                        next_renew: Instant::now() + Duration::from_secs(g.ttl().max(1) as u64) / 3,
                    });
                    self.member_dirty = true;
                }
                Ok(Err(e)) => self.complain("cannot get a lease", e),
                Err(_) => self.complain("cannot get a lease", "timed out"),
            }
            return;
        };
        if Instant::now() < s.next_renew {
            return;
        }
        let sent = boottime_ns();
        let answer = match s.keeper.as_mut() {
            // lease_keep_alive renews once and reads that answer itself.
            None => tokio::time::timeout(budget, client.lease_keep_alive(s.lease))
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|(k, st)| {
                    s.keeper = Some((k, st));
                    Some(s.ttl.as_secs() as i64)
                }),
            Some((keeper, stream)) => {
                let call = async {
                    keeper.keep_alive().await?;
                    stream.message().await
                };
                match tokio::time::timeout(budget, call).await {
                    Ok(Ok(Some(r))) => Ok(Some(r.ttl())),
                    Ok(Ok(None)) => Err("the keepalive stream ended".to_owned()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            }
        };
        match answer {
            Ok(Some(ttl)) if ttl > 0 => {
                s.confirmed_ns = sent;
                s.ttl = Duration::from_secs(ttl as u64);
                s.next_renew = Instant::now() + s.ttl / 3;
                self.etcd_ok = true;
            }
            Ok(_) => {
                warn!(node = %self.node, lease = s.lease, "fleet: the lease expired; every channel this box led is held");
                self.session = None;
                self.lose_all("lease expired");
            }
            Err(e) => {
                // Try again at the next tick, on a fresh stream.
                s.keeper = None;
                self.complain("cannot renew the lease", e);
            }
        }
    }

    async fn publish_member(&mut self, client: &mut Client) {
        let Some(s) = &self.session else { return };
        if !self.member_dirty {
            return;
        }
        let record = MemberRecord {
            capacity: self.cfg.capacity,
            peer: self.cfg.peer.as_ref().map(|p| p.get_ref().clone()),
            channels: self
                .channels
                .iter()
                .map(|(id, e)| (id.clone(), e.seat.hash.clone()))
                .collect(),
            started_us: self.started_us,
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let key = state::member_key(&self.prefix, &self.node);
        let opts = PutOptions::new().with_lease(s.lease);
        match tokio::time::timeout(self.budget(), client.put(key, value, Some(opts))).await {
            Ok(Ok(_)) => self.member_dirty = false,
            Ok(Err(e)) => self.complain("cannot publish this box", e),
            Err(_) => self.complain("cannot publish this box", "timed out"),
        }
    }

    async fn read(&mut self, client: &mut Client) -> bool {
        let opts = GetOptions::new().with_prefix();
        let key = format!("{}/", self.prefix);
        match tokio::time::timeout(self.budget(), client.get(key, Some(opts))).await {
            Ok(Ok(r)) => {
                let kvs = r.kvs().iter().filter_map(|kv| {
                    Some(Kv {
                        key: kv.key_str().ok()?,
                        value: kv.value(),
                        create_revision: kv.create_revision(),
                        lease: kv.lease(),
                    })
                });
                self.obs = state::observe(&self.prefix, kvs);
                self.etcd_ok = true;
                true
            }
            Ok(Err(e)) => {
                self.complain("cannot read the fleet", e);
                false
            }
            Err(_) => {
                self.complain("cannot read the fleet", "timed out");
                false
            }
        }
    }

    async fn step(&mut self) {
        if let Some(mut client) = self.connect().await {
            self.keep_lease(&mut client).await;
            self.publish_member(&mut client).await;
            if self.session.is_some() && self.read(&mut client).await {
                self.members_changed();
                let ids: Vec<String> = self.channels.keys().cloned().collect();
                for id in ids {
                    self.act(&mut client, &id).await;
                }
                self.publish_epochs(&mut client).await;
            }
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
    fn lose_all(&mut self, why: &str) {
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
                let seat = Seat {
                    role: Role::Standby,
                    leader: String::new(),
                    token: 0,
                };
                let _ = e.seat.commands.send(Command::SetSeat(seat.clone()));
                e.sent = Some(seat);
            }
        }
    }

    fn open_fences(&self) {
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

    fn members_changed(&mut self) {
        let now: BTreeSet<String> = self.obs.members.iter().map(|m| m.name.clone()).collect();
        for gone in self
            .members_seen
            .difference(&now)
            .cloned()
            .collect::<Vec<_>>()
        {
            let summary = format!("fleet: node {gone} lost (its lease expired)");
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

    fn alert(&mut self, channel: &str, kind: &str, target: &str, raised: bool, summary: String) {
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

    fn set_seat(&mut self, id: &str, seat: Seat) {
        let Some(e) = self.channels.get_mut(id) else {
            return;
        };
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_busy(id, seat.role == Role::Active);
        if seat.role != Role::Active {
            e.failsafe_ns = 0;
            // Closed before the channel hears of it: nothing leaves from now.
            e.seat.fence.close();
        }
        let was_off = e.sent.as_ref().is_some_and(|s| s.role == Role::Off);
        if e.sent.as_ref() != Some(&seat) {
            if seat.role == Role::Off && !was_off {
                let _ = e
                    .seat
                    .commands
                    .send(Command::Stop(tokio::sync::oneshot::channel().0));
            } else if seat.role != Role::Off && was_off {
                let _ = e
                    .seat
                    .commands
                    .send(Command::Start(tokio::sync::oneshot::channel().0));
            }
            let _ = e.seat.commands.send(Command::SetSeat(seat.clone()));
            e.sent = Some(seat);
        }
    }

    async fn act(&mut self, client: &mut Client, id: &str) {
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        let Some(e) = self.channels.get(id) else {
            return;
        };
        // On air now (by the lease or the failsafe): after an etcd outage
        // it takes its channel back at once, whatever the ranks say.
        let on_air =
            e.sent.as_ref().is_some_and(|s| s.role == Role::Active) && e.seat.fence.permits();
        let decision = decide(&self.node, lease, id, &e.seat.hash, &e.seat.spec, &self.obs);
        let leader_now = self.obs.leaders.get(id).map(|l| l.record.node.clone());
        let previous = e.last_leader.clone();
        let mismatch = matches!(decision, Decision::Off(Why::ConfigMismatch { .. }));
        if let Decision::Off(Why::ConfigMismatch { ours, fleet }) = &decision {
            let summary = format!("fleet: channel {id} is defined differently here (hash {ours}) than on the fleet ({fleet}); this box will not take it over");
            if !self
                .raised
                .contains(&("config-mismatch".to_owned(), format!("{id}/{}", self.node)))
            {
                warn!(channel = %id, "{summary}");
            }
            self.alert(id, "config-mismatch", &self.node.clone(), true, summary);
        } else {
            self.alert(
                id,
                "config-mismatch",
                &self.node.clone(),
                false,
                format!("fleet: channel {id}'s definition here matches the fleet's"),
            );
        }
        let _ = mismatch;
        if !matches!(decision, Decision::Take { .. }) {
            if let Some(e) = self.channels.get_mut(id) {
                e.waiting_since = None;
            }
        }
        match decision {
            Decision::Lead { token } => {
                self.set_seat(
                    id,
                    Seat {
                        role: Role::Active,
                        leader: self.node.clone(),
                        token,
                    },
                );
                self.check_degraded(id);
            }
            Decision::Always => {
                self.set_seat(
                    id,
                    Seat {
                        role: Role::Active,
                        leader: self.node.clone(),
                        token: 0,
                    },
                );
            }
            Decision::Standby { leader } => {
                self.set_seat(
                    id,
                    Seat {
                        role: Role::Standby,
                        leader,
                        token: 0,
                    },
                );
            }
            Decision::Off(_) => {
                let leader = leader_now.clone().unwrap_or_default();
                self.set_seat(
                    id,
                    Seat {
                        role: Role::Off,
                        leader,
                        token: 0,
                    },
                );
            }
            Decision::HandOver { token, to } => {
                info!(channel = %id, to = %to, "fleet: handing the channel over");
                self.set_seat(
                    id,
                    Seat {
                        role: Role::Standby,
                        leader: to.clone(),
                        token: 0,
                    },
                );
                self.resign(id, Some(token)).await;
            }
            Decision::ClearStale { token } => {
                info!(channel = %id, token, "fleet: clearing this node's leadership from a previous lease");
                if !on_air {
                    self.set_seat(
                        id,
                        Seat {
                            role: Role::Standby,
                            leader: String::new(),
                            token: 0,
                        },
                    );
                }
                self.resign(id, Some(token)).await;
                if on_air {
                    self.take(client, id, lease, previous.as_deref()).await;
                }
            }
            Decision::Take { rank } => {
                if !on_air {
                    self.set_seat(
                        id,
                        Seat {
                            role: Role::Standby,
                            leader: String::new(),
                            token: 0,
                        },
                    );
                }
                let e = self.channels.get_mut(id).expect("present");
                let since = *e.waiting_since.get_or_insert_with(Instant::now);
                if on_air || since.elapsed() >= STAGGER * rank as u32 {
                    self.take(client, id, lease, previous.as_deref()).await;
                }
            }
        }
        if let (Some(e), Some(l)) = (self.channels.get_mut(id), leader_now) {
            e.last_leader = Some(l);
        }
    }

    /// Tries to become the channel's leader: creates its key under this
    /// box's lease only if nobody holds it. The key's revision is the
    /// fencing token.
    async fn take(&mut self, client: &mut Client, id: &str, lease: i64, previous: Option<&str>) {
        let Some(e) = self.channels.get(id) else {
            return;
        };
        let key = state::leader_key(&self.prefix, id);
        let record = LeaderRecord {
            node: self.node.clone(),
            hash: e.seat.hash.clone(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let begun = self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .begin_take(id, Instant::now());
        if let Err(node) = begun {
            // It confirmed to `node` that it would not: the failsafe.
            if self
                .warned
                .is_none_or(|w| w.elapsed() >= Duration::from_secs(2))
            {
                self.warned = Some(Instant::now());
                info!(channel = %id, leader = %node, "fleet: not taking the channel: {node} is on air by the failsafe");
            }
            return;
        }
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let r = match tokio::time::timeout(self.budget(), client.txn(txn)).await {
            Ok(Ok(r)) if r.succeeded() => r,
            other => {
                let busy = self
                    .channels
                    .get(id)
                    .and_then(|e| e.sent.as_ref())
                    .is_some_and(|s| s.role == Role::Active);
                self.peers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_busy(id, busy);
                match other {
                    Ok(Err(e)) => self.complain("cannot take a channel", e),
                    Err(_) => self.complain("cannot take a channel", "timed out"),
                    _ => {}
                }
                return;
            }
        };
        let token = r.header().map_or(0, |h| h.revision());
        let alive = |n: &str| self.obs.members.iter().any(|m| m.name == n);
        let reason = match previous {
            None => "start",
            Some(p) if p == self.node => "rejoin",
            Some(p) if alive(p) => "handover",
            Some(_) => "leader-lost",
        };
        *self.takeovers.entry(reason.to_owned()).or_default() += 1;
        let summary = match previous {
            Some(p) => format!(
                "fleet: {} takes channel {id} over from {p} ({reason}), token {token}",
                self.node
            ),
            None => format!("fleet: {} leads channel {id}, token {token}", self.node),
        };
        warn!(channel = %id, reason, token, "{summary}");
        if previous.is_some_and(|p| p != self.node) {
            // An event, not a condition: sent every time, never cleared.
            self.alerts.send(crate::alerts::Alert {
                channel: id.to_owned(),
                target: self.node.clone(),
                kind: "takeover".into(),
                raised: true,
                time_us: nonstop_api::now_us(),
                summary,
            });
        }
        // The lease was confirmed this tick or the deadline guards it.
        self.set_seat(
            id,
            Seat {
                role: Role::Active,
                leader: self.node.clone(),
                token,
            },
        );
        self.open_fences();
        if let Some(e) = self.channels.get_mut(id) {
            e.last_leader = Some(self.node.clone());
            e.waiting_since = None;
        }
        self.check_degraded(id);
    }

    /// While the lease cannot be renewed: one round of asks to the other
    /// replicas of every channel this box leads (at most every TTL/3). A
    /// channel all of whose other replicas confirm may send until the
    /// round's send time plus the TTL.
    async fn failsafe(&mut self) {
        let ttl = self.session.as_ref().map_or(self.cfg.ttl, |s| s.ttl);
        let overdue = self.session.as_ref().is_none_or(|s| {
            boottime_ns().saturating_sub(s.confirmed_ns) > (ttl / 2).as_nanos() as u64
        });
        if !overdue || self.cfg.peer.is_none() {
            return;
        }
        if self.last_round.is_some_and(|t| t.elapsed() < ttl / 3) {
            return;
        }
        let leading: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, e)| {
                e.sent.as_ref().is_some_and(|s| s.role == Role::Active)
                    && e.seat.spec.mode == crate::config::FleetMode::ActivePassive
            })
            .map(|(id, _)| id.clone())
            .collect();
        if leading.is_empty() {
            return;
        }
        self.last_round = Some(Instant::now());
        let peer_of = |n: &str| {
            self.obs
                .members
                .iter()
                .find(|m| m.name == n)
                .and_then(|m| m.record.peer.clone())
        };
        let mut asks: BTreeMap<String, Ask> = BTreeMap::new();
        // Per channel, the peers that must confirm (None: one cannot be
        // asked, or it has no other replica: no failsafe).
        let mut need: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for id in &leading {
            let Some(e) = self.channels.get(id) else {
                continue;
            };
            let others: Vec<String> = replicas(id, &e.seat.spec, &self.obs)
                .into_iter()
                .filter(|n| *n != self.node)
                .collect();
            let addrs: Option<Vec<String>> = others.iter().map(|n| peer_of(n)).collect();
            let addrs = addrs.filter(|a| !a.is_empty());
            for a in addrs.iter().flatten() {
                asks.entry(a.clone())
                    .or_insert_with(|| Ask {
                        node: self.node.clone(),
                        channels: Vec::new(),
                        ttl_ms: ttl.as_millis() as u64,
                    })
                    .channels
                    .push(id.clone());
            }
            need.insert(id.clone(), addrs);
        }
        let sent = boottime_ns();
        let answers = failsafe::round(&self.http, asks, self.budget()).await;
        let until = sent + ttl.as_nanos() as u64 - margin(ttl);
        for (id, addrs) in need {
            let confirmed = addrs.is_some_and(|addrs| {
                addrs.iter().all(|a| {
                    answers
                        .get(a)
                        .is_some_and(|ans| ans.confirmed.contains(&id))
                })
            });
            let Some(e) = self.channels.get_mut(&id) else {
                continue;
            };
            if confirmed {
                if e.failsafe_ns == 0 {
                    warn!(channel = %id, "fleet: etcd unreachable, but every other replica confirms it holds nothing: staying on air (failsafe)");
                }
                e.failsafe_ns = until;
            } else if e.failsafe_ns != 0 && e.failsafe_ns <= boottime_ns() {
                e.failsafe_ns = 0;
            }
        }
        self.open_fences();
    }

    /// Once a second: each channel's output delay against UTC, for the
    /// other boxes to compare theirs with (µs, under the lease).
    async fn publish_epochs(&mut self, client: &mut Client) {
        if self
            .epoch_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.epoch_at = Some(Instant::now());
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        let mut ops = Vec::new();
        for (id, e) in &self.channels {
            let delay = e
                .seat
                .epoch_delay
                .load(std::sync::atomic::Ordering::Relaxed);
            if delay != 0 && e.sent.as_ref().is_some_and(|s| s.role != Role::Off) {
                let key = state::epoch_key(&self.prefix, id, &self.node);
                ops.push(TxnOp::put(
                    key,
                    (delay / 1000).to_string(),
                    Some(PutOptions::new().with_lease(lease)),
                ));
            }
        }
        if ops.is_empty() {
            return;
        }
        let txn = Txn::new().and_then(ops);
        if let Ok(Err(e)) = tokio::time::timeout(self.budget(), client.txn(txn)).await {
            self.complain("cannot publish the epoch delays", e);
        }
    }

    /// No standby left for a channel this box leads.
    fn check_degraded(&mut self, id: &str) {
        let Some(e) = self.channels.get(id) else {
            return;
        };
        let want = e.seat.spec.replicas.min(2);
        let have = replicas(id, &e.seat.spec, &self.obs).len();
        let degraded = have < want;
        let summary = if degraded {
            format!(
                "fleet: channel {id} has no standby left ({have} of {} replicas up)",
                e.seat.spec.replicas
            )
        } else {
            format!("fleet: channel {id} has a standby again")
        };
        self.alert(id, "fleet-degraded", id, degraded, summary);
    }

    /// Deletes the channel's leader key if it still has `token` (or is
    /// this box's, when no token is given).
    async fn resign(&mut self, id: &str, token: Option<i64>) {
        let token = match token {
            Some(t) => t,
            None => match self.obs.leaders.get(id) {
                Some(l) if l.record.node == self.node => l.token,
                _ => return,
            },
        };
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let key = state::leader_key(&self.prefix, id);
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                token,
            )])
            .and_then([TxnOp::delete(key, None)]);
        let budget = (self.cfg.ttl / 3).max(Duration::from_millis(200));
        if let Ok(Err(e)) | Err(e) = tokio::time::timeout(budget, client.txn(txn))
            .await
            .map_err(|_| etcd_client::Error::InvalidArgs("timed out".into()))
        {
            warn!(channel = %id, "fleet: cannot resign: {e} (the lease's expiry will)");
        }
    }

    /// Leaving on shutdown: outputs held, the lease revoked so the others
    /// take over at once rather than after the TTL.
    async fn leave(&mut self) {
        for e in self.channels.values() {
            e.seat.fence.close();
        }
        if let (Some(client), Some(s)) = (self.client.as_mut(), self.session.take()) {
            let _ = tokio::time::timeout(Duration::from_millis(500), client.lease_revoke(s.lease))
                .await;
            info!(node = %self.node, "fleet: left (lease revoked)");
        }
    }

    /// This box's output delay against each other box's, for `id`, s.
    fn epoch_offsets(&self, id: &str, e: &Entry) -> BTreeMap<String, f64> {
        let mine = e
            .seat
            .epoch_delay
            .load(std::sync::atomic::Ordering::Relaxed)
            / 1000;
        if mine == 0 {
            return BTreeMap::new();
        }
        self.obs
            .epochs
            .iter()
            .filter(|((ch, node), _)| ch == id && *node != self.node)
            .map(|((_, node), us)| (node.clone(), (mine - *us) as f64 / 1e6))
            .collect()
    }

    fn publish_view(&self) {
        let members = self
            .obs
            .members
            .iter()
            .map(|m| MemberView {
                name: m.name.clone(),
                capacity: m.record.capacity,
                drained: m.drained,
                alive: true,
                leads: self
                    .obs
                    .leaders
                    .values()
                    .filter(|l| l.record.node == m.name)
                    .count() as u32,
            })
            .chain(
                self.obs
                    .drained
                    .iter()
                    .filter(|d| !self.obs.members.iter().any(|m| &m.name == *d))
                    .map(|d| MemberView {
                        name: d.clone(),
                        capacity: 0,
                        drained: true,
                        alive: false,
                        leads: 0,
                    }),
            )
            .collect();
        let channels = self
            .channels
            .iter()
            .map(|(id, e)| {
                let seat = e.sent.clone().unwrap_or_default();
                (
                    id.clone(),
                    ChannelView {
                        role: seat.role,
                        leader: seat.leader,
                        token: seat.token,
                        replicas: replicas(id, &e.seat.spec, &self.obs),
                        epoch_offsets: self.epoch_offsets(id, e),
                        dropped: e
                            .seat
                            .fence
                            .dropped
                            .load(std::sync::atomic::Ordering::Relaxed),
                    },
                )
            })
            .collect();
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        *v = FleetView {
            node: self.node.clone(),
            etcd: self.etcd_ok,
            lease: self.session.as_ref().map_or(0, |s| s.lease),
            lease_left: self.session.as_ref().map_or(Duration::ZERO, |s| {
                Duration::from_nanos(s.deadline_ns().saturating_sub(boottime_ns()))
            }),
            members,
            channels,
            takeovers: self.takeovers.clone(),
        };
    }
}
