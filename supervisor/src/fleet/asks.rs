//! The leader's side of the failsafe (`failsafe` has the peer's side and
//! the reasoning): while its lease cannot be renewed, rounds of asks to the
//! other replicas of each channel it leads.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::warn;

use super::agent::{margin, Agent};
use super::decide::replicas;
use super::failsafe::{self, Ask};
use crate::channel::Role;
use crate::output::boottime_ns;

impl Agent {
    /// While the lease cannot be renewed: one round of asks to the other
    /// replicas of every channel this box leads (at most every TTL/3). A
    /// channel all of whose other replicas confirm may send until the
    /// round's send time plus the TTL.
    pub(super) async fn failsafe(&mut self) {
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
}
