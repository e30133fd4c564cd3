//! The channel's seat in the fleet: its role on this box (active,
//! standby, off), the leader, the fencing token, and the fence every one
//! of its outputs checks on every buffer. The fleet decides (`crate::fleet`);
//! the channel only obeys: a standby builds its outputs and holds them
//! (READY, nothing sent), the leader lets them play.

use std::sync::Arc;

use tracing::{info, warn};

use super::{Channel, Phase};
use crate::output::Fence;

/// What this box does with a channel of the fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Not run here (not one of its replicas, or a config that differs).
    #[default]
    Off,
    /// Inputs, switch and encoders warm; outputs built and held.
    Standby,
    /// The outputs send.
    Active,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Off, Role::Standby, Role::Active];

    pub fn name(self) -> &'static str {
        match self {
            Role::Off => "off",
            Role::Standby => "standby",
            Role::Active => "active",
        }
    }
}

/// The channel's place in the fleet, as D-Bus, metrics and the status
/// page show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seat {
    pub role: Role,
    /// The node leading the channel ("" while nobody does).
    pub leader: String,
    /// The leader key's create revision in etcd (0: none).
    pub token: i64,
    /// A scheduled handover's cut, running time (= UTC) ns, 0: none. The
    /// new leader sends the frames from `from` on, the old one those
    /// before `until`; the cut is a GOP boundary.
    pub from: u64,
    pub until: u64,
}

impl Seat {
    pub fn new(role: Role, leader: String, token: i64) -> Seat {
        Seat {
            role,
            leader,
            token,
            ..Seat::default()
        }
    }

    /// Standing by while nobody leads.
    pub fn leaderless() -> Seat {
        Seat::new(Role::Standby, String::new(), 0)
    }
}

pub(super) struct FleetPart {
    pub(super) fence: Arc<Fence>,
    pub(super) seat: Seat,
}

impl Channel {
    /// Runs the channel under the fleet: its outputs are held until the
    /// fleet makes this box the leader, and then send only while `fence`
    /// allows.
    pub fn join_fleet(&mut self, fence: Arc<Fence>) {
        self.fleet = Some(FleetPart {
            fence,
            seat: Seat::new(Role::Standby, String::new(), 0),
        });
    }

    /// Where the channel's output stands against UTC (see
    /// `Fanout::epoch_delay`).
    pub fn epoch_delay(&self) -> Arc<std::sync::atomic::AtomicI64> {
        self.fanout.epoch_delay.clone()
    }

    /// Where a scheduled handover may cut the channel: a GOP boundary of
    /// every rendition that is also a segment boundary of every HLS output
    /// (when the durations allow), so that the new leader's outputs start
    /// whole.
    pub fn handover_grid(&self) -> std::time::Duration {
        let ms = |d: std::time::Duration| (d.as_millis() as u64).max(1);
        let mut grid = self
            .cfg
            .encoders
            .iter()
            .map(|e| ms(e.keyframe_interval))
            .fold(1, lcm);
        for (kind, _) in self.outputs.iter().flat_map(|o| o.dests.iter()) {
            if let crate::uri::OutputKind::Hls { segment, .. } = kind {
                grid = lcm(grid, ms(*segment));
            }
        }
        // Durations with no small common multiple: GOPs only.
        if grid > 60_000 {
            grid = self
                .cfg
                .encoders
                .iter()
                .map(|e| ms(e.keyframe_interval))
                .max()
                .unwrap_or(1000);
        }
        std::time::Duration::from_millis(grid)
    }

    /// Whether a handover can be scheduled at a GOP boundary: every output
    /// is connectionless (UDP, HLS, files), so the old and the new leader
    /// can each send their side of the cut at once. An SRT or RTMP output
    /// holds a connection that the receiver (an SRT listener, an RTMP
    /// server taking one publisher per key) accepts from one box at a
    /// time: the old leader must let go before the new one connects, so
    /// such channels hand over at once, the new leader starting on a
    /// forced keyframe.
    pub fn handover_seamless(&self) -> bool {
        self.outputs
            .iter()
            .flat_map(|o| o.dests.iter())
            .all(|(kind, _)| {
                matches!(
                    kind,
                    crate::uri::OutputKind::Udp { .. }
                        | crate::uri::OutputKind::Hls { .. }
                        | crate::uri::OutputKind::File { .. }
                )
            })
    }

    /// Outputs are built but must not send.
    pub(super) fn holds_outputs(&self) -> bool {
        self.fleet
            .as_ref()
            .is_some_and(|f| f.seat.role != Role::Active)
    }

    pub(super) fn fence(&self) -> Option<Arc<Fence>> {
        self.fleet.as_ref().map(|f| f.fence.clone())
    }

    pub(super) fn seat(&self) -> Option<Seat> {
        self.fleet.as_ref().map(|f| f.seat.clone())
    }

    /// The fleet's decision for this channel.
    pub(super) fn set_seat(&mut self, seat: Seat) {
        let Some(part) = self.fleet.as_mut() else {
            return;
        };
        let was = part.seat.role;
        let now = seat.role;
        let (from, until) = (seat.from, seat.until);
        if part.seat != seat {
            info!(channel = %self.id, role = now.name(), leader = %seat.leader, token = seat.token, from_ns = from, until_ns = until, "fleet role");
        }
        part.seat = seat;
        match (was == Role::Active, now == Role::Active) {
            (false, true) => {
                self.fanout.set_window(from, until);
                for o in 0..self.outputs.len() {
                    self.release_output(o);
                }
            }
            (true, false) => {
                warn!(channel = %self.id, role = now.name(), "no longer the leader: outputs held");
                for o in 0..self.outputs.len() {
                    if self.outputs[o].pipeline.is_some() {
                        self.take_down_output(o);
                        self.start_output(o);
                    }
                }
                self.fanout.set_window(0, 0);
            }
            (true, true) => self.fanout.set_window(from, until),
            _ => {}
        }
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    (a / gcd(a, b)).saturating_mul(b)
}

impl Phase {
    pub(super) fn held(&self) -> bool {
        matches!(self, Phase::Held)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Channel;

    fn channel(encoder: &str, outputs: &[&str]) -> Channel {
        let mut text = format!(
            "[[channel]]\nid = \"c\"\n[[channel.input]]\nid = \"a\"\nuri = \"test://smpte\"\n[channel.encoder]\n{encoder}\n"
        );
        for (n, uri) in outputs.iter().enumerate() {
            text.push_str(&format!(
                "[[channel.output]]\nid = \"o{n}\"\nuri = \"{uri}\"\n"
            ));
        }
        let cfg = crate::config::Config::parse("t.toml", &text).unwrap();
        Channel::new(cfg.channels[0].clone(), Vec::new()).0
    }

    #[test]
    fn the_handover_grid_holds_gops_and_hls_segments() {
        let s = std::time::Duration::from_secs;
        let c = channel("keyframe_interval = \"1s\"", &["udp://127.0.0.1:5000"]);
        assert_eq!(c.handover_grid(), s(1));
        let c = channel(
            "keyframe_interval = \"2s\"",
            &["hls:///tmp/h?segment=6s", "udp://127.0.0.1:5000"],
        );
        assert_eq!(c.handover_grid(), s(6));
        let c = channel("keyframe_interval = \"2s\"", &["hls:///tmp/h?segment=3s"]);
        assert_eq!(c.handover_grid(), s(6));
    }

    #[test]
    fn only_connectionless_outputs_hand_over_at_a_scheduled_cut() {
        let kf = "keyframe_interval = \"1s\"";
        let udp_hls_file = [
            "udp://127.0.0.1:5000",
            "hls:///tmp/h?segment=2s",
            "file:///tmp/rec.ts",
        ];
        assert!(channel(kf, &udp_hls_file).handover_seamless());
        assert!(!channel(kf, &["udp://127.0.0.1:5000", "srt://10.0.0.1:9000"]).handover_seamless());
        assert!(!channel(kf, &["rtmp://live.example.com/app/key"]).handover_seamless());
    }
}
