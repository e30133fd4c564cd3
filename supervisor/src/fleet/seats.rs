//! Carrying out each channel's decision: its seat on this box, taking the
//! leader key (the fencing token), handing over, resigning, and the
//! alerts that go with them.

use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tracing::{info, warn};

use super::agent::{Agent, STAGGER};
use super::decide::{decide, replicas, Decision, Why};
use super::state::{self, LeaderRecord};
use crate::channel::{Command, Role, Seat};

impl Agent {
    pub(super) fn set_seat(&mut self, id: &str, seat: Seat) {
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
        } else if seat.until == 0 {
            // Leading with no handover's end.
            e.seat.fence.end_at(0);
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

    pub(super) async fn act(&mut self, client: &mut Client, id: &str) {
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        if self.handing_over(id) {
            return;
        }
        self.clear_handover(id).await;
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
                let mut seat = Seat::new(Role::Active, self.node.clone(), token);
                // A handover's cut stays with the leadership it came with.
                if let Some(s) = self.channels.get(id).and_then(|e| e.sent.as_ref()) {
                    if s.role == Role::Active && s.token == token {
                        seat.from = s.from;
                    }
                }
                self.set_seat(id, seat);
                self.check_degraded(id);
            }
            Decision::Always => {
                self.set_seat(id, Seat::new(Role::Active, self.node.clone(), 0));
            }
            Decision::Standby { leader } => {
                // The leader's token, so every box shows the same.
                let token = self.obs.leaders.get(id).map_or(0, |l| l.token);
                self.set_seat(id, Seat::new(Role::Standby, leader, token));
            }
            Decision::Off(_) => {
                let leader = leader_now.clone().unwrap_or_default();
                self.set_seat(id, Seat::new(Role::Off, leader, 0));
            }
            Decision::HandOver { token, to } => self.hand_over(id, token, to).await,
            Decision::ClearStale { token } => {
                info!(channel = %id, token, "fleet: clearing this node's leadership from a previous lease");
                if !on_air {
                    self.set_seat(id, Seat::leaderless());
                }
                self.resign(id, Some(token)).await;
                if on_air {
                    self.take(client, id, lease, previous.as_deref()).await;
                }
            }
            Decision::Take { rank } => {
                if !on_air {
                    self.set_seat(id, Seat::leaderless());
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
    pub(super) async fn take(
        &mut self,
        client: &mut Client,
        id: &str,
        lease: i64,
        previous: Option<&str>,
    ) {
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
        warn!(channel = %id, event = "takeover", reason, token, "{summary}");
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
        // A scheduled handover to this box: its outputs start at the cut.
        let mut seat = Seat::new(Role::Active, self.node.clone(), token);
        if let Some(h) = self.obs.handovers.get(id).filter(|h| h.to == self.node) {
            info!(channel = %id, from = %h.from, at_ns = h.at, "fleet: the handover's cut: outputs start with the GOP there");
            seat.from = h.at;
        }
        // The lease was confirmed this tick or the deadline guards it.
        self.set_seat(id, seat);
        self.open_fences();
        if let Some(e) = self.channels.get_mut(id) {
            e.last_leader = Some(self.node.clone());
            e.waiting_since = None;
        }
        self.check_degraded(id);
    }

    /// No standby left for a channel this box leads.
    pub(super) fn check_degraded(&mut self, id: &str) {
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
    pub(super) async fn resign(&mut self, id: &str, token: Option<i64>) {
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
}
