//! What the agent shows: the fleet view D-Bus, metrics and the status
//! page read, and each channel's epoch offset from its peers.

use std::collections::BTreeMap;
use std::time::Duration;

use super::agent::{Agent, Entry};
use super::decide::replicas;
use super::{ChannelView, FleetView, MemberView};
use crate::output::boottime_ns;

impl Agent {
    /// This box's output delay against each other box's, for `id`, s.
    pub(super) fn epoch_offsets(&self, id: &str, e: &Entry) -> BTreeMap<String, f64> {
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

    pub(super) fn publish_view(&self) {
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
