//! The scheduled handover (a drain, or a preferred box back): the old
//! leader picks a cut T, a GOP boundary a little ahead on the channel's
//! UTC timeline (the same on every box, see the epoch lock), and in one
//! transaction deletes its leader key and writes `handover/CHANNEL`
//! naming the new leader and T. It goes on sending the frames before T
//! only; the new leader takes the key (a new fencing token) and sends
//! from the keyframe at T on. The receiver sees one stream: continuous
//! timestamps, no frame lost, no frame twice.
//!
//! Only for channels whose outputs are all connectionless (UDP, HLS,
//! files): an SRT or RTMP destination takes one box's connection at a
//! time, so those hand over at once (the old leader stops and resigns, the
//! new one starts on a forced keyframe).
//!
//! The old leader's fence gets an end of its own before the transaction
//! (T plus the channel's output delay plus a margin, on `CLOCK_BOOTTIME`):
//! a box frozen during the handover sends nothing after it, whatever its
//! lease says.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tracing::{info, warn};

use super::agent::Agent;
use super::state::{self, Handover};
use crate::channel::{Role, Seat};
use crate::output::boottime_ns;

/// How far ahead of now the cut is at least: the new leader must read the
/// handover (a tick), take the key and start its outputs before its
/// frame at T reaches them.
const LEAD: Duration = Duration::from_millis(800);
/// After the cut, how long the old leader may still send its last frames
/// (beyond the channel's delay from frame time to the outputs).
const TAIL: Duration = Duration::from_millis(700);

/// An old leader's handover in progress.
pub(super) struct Handing {
    pub(super) to: String,
    /// The cut (running time = UTC, ns).
    pub(super) at: u64,
    /// When its fence closes for good (boottime ns).
    pub(super) end_ns: u64,
}

/// The cut: the first multiple of `grid` at least `lead` after `now` (ns).
pub fn cut(now: u64, grid: u64, lead: u64) -> u64 {
    let grid = grid.max(1);
    (now + lead).div_ceil(grid) * grid
}

impl Agent {
    /// Hands channel `id` (led with `token`) over to `to` at the next cut
    /// (at once for a channel with connected outputs).
    pub(super) async fn hand_over(&mut self, id: &str, token: i64, to: String) {
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        let Some(e) = self.channels.get_mut(id) else {
            return;
        };
        if !e.seat.seamless {
            info!(channel = %id, to = %to, "fleet: handing the channel over now (its SRT or RTMP outputs connect from one box at a time)");
            self.set_seat(id, Seat::new(Role::Standby, to, 0));
            self.resign(id, Some(token)).await;
            return;
        }
        let now = nonstop_api::now_us() * 1000;
        let grid = e.seat.grid.as_nanos() as u64;
        let at = cut(now, grid, LEAD.as_nanos() as u64);
        let delay = e
            .seat
            .epoch_delay
            .load(std::sync::atomic::Ordering::Relaxed)
            .clamp(0, 5_000_000_000) as u64;
        let end_ns = boottime_ns() + (at - now) + delay + TAIL.as_nanos() as u64;
        // Armed before etcd hears of it: from here on a freeze cannot make
        // this box send past the cut.
        e.seat.fence.end_at(end_ns);
        e.handing = Some(Handing {
            to: to.clone(),
            at,
            end_ns,
        });
        let mut seat = Seat::new(Role::Active, self.node.clone(), token);
        seat.until = at;
        self.set_seat(id, seat);
        let record = Handover {
            from: self.node.clone(),
            to: to.clone(),
            at,
        };
        let leader = state::leader_key(&self.prefix, id);
        let txn = Txn::new()
            .when([Compare::create_revision(
                leader.clone(),
                CompareOp::Equal,
                token,
            )])
            .and_then([
                TxnOp::delete(leader, None),
                TxnOp::put(
                    state::handover_key(&self.prefix, id),
                    serde_json::to_vec(&record).unwrap_or_default(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
            ]);
        let budget = self.budget();
        let Some(client) = self.client.as_mut() else {
            return;
        };
        match tokio::time::timeout(budget, client.txn(txn)).await {
            Ok(Ok(r)) if r.succeeded() => {
                let ms = (at - now) / 1_000_000;
                info!(channel = %id, to = %to, at_ns = at, in_ms = ms, "fleet: handing the channel over at the GOP boundary {ms} ms ahead");
            }
            Ok(Ok(_)) => {
                // The key is not this box's any more: somebody else may
                // lead, so nothing more leaves here.
                warn!(channel = %id, "fleet: cannot hand the channel over: its leader key is no longer this box's; outputs held");
                self.end_handover(id);
            }
            // Unknown whether it applied: the cut stands either way, and
            // the next read shows who leads.
            Ok(Err(e)) => self.complain("cannot hand a channel over", e),
            Err(_) => self.complain("cannot hand a channel over", "timed out"),
        }
    }

    /// Whether channel `id` is handing over and still sending its last
    /// frames (its decisions wait); ends a handover whose time is up.
    pub(super) fn handing_over(&mut self, id: &str) -> bool {
        let Some(h) = self.channels.get(id).and_then(|e| e.handing.as_ref()) else {
            return false;
        };
        if boottime_ns() < h.end_ns {
            return true;
        }
        self.end_handover(id);
        false
    }

    /// The old leader's last frame has gone: it stands by for the new one.
    fn end_handover(&mut self, id: &str) {
        let Some(h) = self.channels.get_mut(id).and_then(|e| e.handing.take()) else {
            return;
        };
        info!(channel = %id, to = %h.to, at_ns = h.at, "fleet: handover done: outputs held");
        self.set_seat(id, Seat::new(Role::Standby, h.to, 0));
    }

    /// Deletes the handover record this box wrote, once its handover is
    /// over (the others then go by their ranks again).
    pub(super) async fn clear_handover(&mut self, id: &str) {
        let mine = self
            .obs
            .handovers
            .get(id)
            .is_some_and(|h| h.from == self.node);
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        if !mine || self.channels.get(id).is_some_and(|e| e.handing.is_some()) {
            return;
        }
        let key = state::handover_key(&self.prefix, id);
        let txn = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(key, None)]);
        let budget = self.budget();
        let Some(client) = self.client.as_mut() else {
            return;
        };
        match tokio::time::timeout(budget, client.txn(txn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.complain("cannot clear a handover", e),
            Err(_) => self.complain("cannot clear a handover", "timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_is_the_first_grid_line_past_the_lead() {
        let s = 1_000_000_000u64;
        assert_eq!(cut(100 * s, 2 * s, s / 2), 102 * s);
        assert_eq!(cut(100 * s + 1, 2 * s, s / 2), 102 * s);
        assert_eq!(cut(101 * s + s / 2, 2 * s, s / 2), 102 * s);
        assert_eq!(cut(101 * s + s / 2 + 1, 2 * s, s / 2), 104 * s);
        // Never less than the lead ahead, never more than lead + grid.
        for now in (0..50).map(|i| 1_700_000_000 * s + i * 37_000_001) {
            let t = cut(now, 6 * s, 800_000_000);
            assert_eq!(t % (6 * s), 0);
            assert!(t >= now + 800_000_000 && t < now + 800_000_000 + 6 * s);
        }
    }
}
