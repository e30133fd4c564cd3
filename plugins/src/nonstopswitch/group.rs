//! Switch groups: the `nonstopswitch` elements of one channel (video + audio)
//! share input health and switching decisions, so a picture and its sound
//! always come from the same input and cut at the same running time.
//!
//! Every element is a member of a group; without a `group` name the group is
//! private to the element. Members publish their pads' health at each output
//! slot. Decisions are taken at the slots of the member with the longest
//! period (the "leader grid"), by whichever member reaches that point first,
//! and appended to a log that every member applies at its first slot at or
//! after the decision time. Members align their slot grids on the group's
//! origin, so with 10 ms audio chunks and common frame rates audio and video
//! cut on the same running time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use gst::prelude::*;
use gst::ClockTime;

use super::decide::{self, Candidate, Control, Damping, Health, Policy, Reason, Situation};

/// A member's slot grid: slot `k` starts at `origin + k * den / num` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub origin: ClockTime,
    pub num: u64,
    pub den: u64,
}

impl Grid {
    pub fn slot(&self, k: u64) -> ClockTime {
        let off = k
            .mul_div_floor(self.den * ClockTime::SECOND.nseconds(), self.num)
            .unwrap_or(u64::MAX / 2);
        self.origin + ClockTime::from_nseconds(off)
    }

    /// Index of the first slot starting at or after `t`.
    pub fn first_at_or_after(&self, t: ClockTime) -> u64 {
        let rel = t.saturating_sub(self.origin).nseconds();
        let k = rel
            .mul_div_ceil(self.num, self.den * ClockTime::SECOND.nseconds())
            .unwrap_or(0);
        // Rounding in slot() can put slot k a nanosecond early; fix up.
        if self.slot(k) < t {
            k + 1
        } else {
            k
        }
    }

    /// Start of the last slot at or before `t`.
    pub fn at_or_before(&self, t: ClockTime) -> ClockTime {
        let k = self.first_at_or_after(t);
        if self.slot(k) == t || k == 0 {
            self.slot(k)
        } else {
            self.slot(k - 1)
        }
    }

    /// True if this grid's period is longer than `other`'s.
    fn longer_than(&self, other: &Grid) -> bool {
        (self.den as u128) * (other.num as u128) > (other.den as u128) * (self.num as u128)
    }
}

/// A pad's own view of its input, published to the group each slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Waiting,
    Receiving {
        last_seen: ClockTime,
        since: ClockTime,
        /// Content received beyond what `last_seen` accounts for: a source
        /// that delivers in bursts (audio PES grouped by a muxer, 300 ms at
        /// a time from ffmpeg) is ahead by a burst, and its next burst is
        /// not late.
        carry: ClockTime,
    },
    Eos,
    /// Data flows but an element upstream says it is unusable (black,
    /// frozen, silent...) since `since`: treated as stalled.
    Unhealthy {
        since: ClockTime,
    },
}

/// What a pad knows when a buffer arrives, to judge its clean window.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub timeout: ClockTime,
    /// The previous buffer's duration: the gap expected before this one.
    pub expected: ClockTime,
    pub clean_gap: ClockTime,
    /// The buffer is marked DISCONT.
    pub discont: bool,
}

impl Local {
    /// Receiving since `t`, its first buffer then.
    pub fn fresh(t: ClockTime) -> Local {
        Local::Receiving {
            last_seen: t,
            since: t,
            carry: ClockTime::ZERO,
        }
    }

    /// The same view with its clean window restarted at `now` (new caps,
    /// an unhealthy flag cleared).
    pub fn restarted(self, now: ClockTime) -> Local {
        match self {
            Local::Receiving {
                last_seen, carry, ..
            } => Local::Receiving {
                last_seen,
                since: now,
                carry,
            },
            other => other,
        }
    }

    /// The pad's view after a buffer arrived at `now`, and the gap if the
    /// buffer ended an interruption short of a stall. The clean window
    /// (`since`, what `return-after` counts) restarts on any interruption:
    /// content missing for more than `clean-gap` (a buffer later than the
    /// content received before it covers: the previous buffer's duration,
    /// plus what a burst delivered ahead), or a buffer marked
    /// discontinuous. After a stall it restarts too.
    pub fn on_buffer(self, now: ClockTime, a: &Arrival) -> (Local, Option<ClockTime>) {
        match self {
            Local::Receiving {
                since,
                last_seen,
                carry,
            } if now.saturating_sub(last_seen) < a.timeout => {
                let gap = now.saturating_sub(last_seen);
                let ahead = carry + a.expected;
                let interrupted = a.discont || gap > ahead + a.clean_gap;
                let since = if interrupted { now } else { since };
                // What is still ahead now; never more than the timeout, so
                // a burst cannot excuse a gap the stall rule would not.
                let carry = if interrupted {
                    ClockTime::ZERO
                } else {
                    ahead.saturating_sub(gap).min(a.timeout)
                };
                (
                    Local::Receiving {
                        last_seen: now,
                        since,
                        carry,
                    },
                    interrupted.then_some(gap),
                )
            }
            _ => (Local::fresh(now), None),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub priority: u32,
    pub local: Local,
}

impl Published {
    fn effective(&self, now: ClockTime, timeout: ClockTime) -> Health {
        match self.local {
            Local::Waiting => Health::Waiting,
            Local::Eos => Health::Eos,
            Local::Unhealthy { since } => Health::Stalled { since },
            Local::Receiving {
                last_seen, since, ..
            } => {
                if now.saturating_sub(last_seen) >= timeout {
                    Health::Stalled { since: last_seen }
                } else {
                    Health::Healthy { since }
                }
            }
        }
    }
}

/// One switching decision, as every member applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub at: ClockTime,
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub reason: Reason,
    pub stall_duration: ClockTime,
    /// The hold-off now applying to `from` (flap damping included).
    pub from_holdoff: ClockTime,
}

#[derive(Debug, Default)]
struct Member {
    grid: Option<Grid>,
    /// By input index; refilled in place at every slot (no allocation).
    pads: Vec<(u32, Published)>,
}

#[derive(Debug, Default)]
struct GroupState {
    members: BTreeMap<usize, Member>,
    origin: Option<ClockTime>,
    /// When the first member started (the start grace counts from it; the
    /// origin is 0 on an epoch grid).
    first_start: Option<ClockTime>,
    last_point: Option<ClockTime>,
    active: Option<u32>,
    started: Option<ClockTime>,
    lost_since: Option<ClockTime>,
    control: Control,
    seq: u64,
    log: VecDeque<Entry>,
    /// Flap damping per input index, and each input's hold-off as of the
    /// last decision point (what the pads' `return-holdoff` shows).
    damping: BTreeMap<u32, Damping>,
    holdoffs: BTreeMap<u32, ClockTime>,
    /// Reused by every evaluation, so a decision point allocates nothing.
    candidates: Vec<Candidate>,
}

const LOG_LEN: usize = 64;

#[derive(Debug)]
pub struct Group {
    state: Mutex<GroupState>,
}

static REGISTRY: LazyLock<Mutex<HashMap<String, Weak<Group>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl Group {
    pub fn private() -> Arc<Group> {
        Arc::new(Group {
            state: Mutex::new(GroupState::default()),
        })
    }

    /// The process-wide group called `name`, created on first use.
    pub fn named(name: &str) -> Arc<Group> {
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|_, g| g.strong_count() > 0);
        if let Some(g) = reg.get(name).and_then(Weak::upgrade) {
            return g;
        }
        let g = Arc::new(Group {
            state: Mutex::new(GroupState::default()),
        });
        reg.insert(name.to_owned(), Arc::downgrade(&g));
        g
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn join(&self, id: usize) {
        self.lock().members.entry(id).or_default();
    }

    pub fn leave(&self, id: usize) {
        let mut st = self.lock();
        st.members.remove(&id);
        reset_if_idle(&mut st);
    }

    /// A member starts producing at `now` with period `den / num` seconds.
    /// Returns its grid (aligned on the group's origin), its first slot index,
    /// the log position it starts from and the input currently on air.
    /// On an `epoch` grid the origin is running time 0: processes whose
    /// pipelines run on the same clock and base time (UTC) get the same
    /// slot times.
    pub fn start(
        &self,
        id: usize,
        now: ClockTime,
        num: u64,
        den: u64,
        epoch: bool,
    ) -> (Grid, u64, u64, Option<u32>) {
        let mut st = self.lock();
        st.first_start.get_or_insert(now);
        let origin = *st
            .origin
            .get_or_insert(if epoch { ClockTime::ZERO } else { now });
        let grid = Grid { origin, num, den };
        let k = grid.first_at_or_after(now);
        st.members.entry(id).or_default().grid = Some(grid);
        (grid, k, st.seq, st.active)
    }

    /// A member stopped: its stale health must not count any more.
    pub fn stop(&self, id: usize) {
        let mut st = self.lock();
        if let Some(m) = st.members.get_mut(&id) {
            m.grid = None;
            m.pads.clear();
        }
        reset_if_idle(&mut st);
    }

    pub fn control(&self) -> Control {
        self.lock().control
    }

    /// Input `index`'s hold-off before a return, as of the last decision.
    pub fn holdoff(&self, index: u32) -> Option<ClockTime> {
        self.lock().holdoffs.get(&index).copied()
    }

    pub fn set_manual(&self, index: u32) {
        let mut st = self.lock();
        st.control = Control {
            manual: true,
            preferred: Some(index),
            request_pending: true,
        };
    }

    pub fn set_manual_mode(&self, manual: bool) {
        let mut st = self.lock();
        if manual {
            st.control.manual = true;
            if st.control.preferred.is_none() {
                st.control.preferred = st.active;
            }
        } else {
            st.control = Control::default();
        }
    }

    /// Publishes a member's health at its slot `t`, takes a decision if `t`
    /// reaches a decision point nobody has evaluated yet, and returns the log
    /// entries this member must apply at `t` (those after `applied`).
    /// Health is judged at `now`: a member whose push was held back by a
    /// synchronising sink runs late, and must not fail over late.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        id: usize,
        t: ClockTime,
        now: ClockTime,
        pads: &[(u32, Published)],
        policy: &Policy,
        timeout: ClockTime,
        applied: u64,
    ) -> (Vec<Entry>, Option<u32>) {
        let mut st = self.lock();
        let Some(own_grid) = st.members.get(&id).and_then(|m| m.grid) else {
            return (Vec::new(), st.active);
        };
        let own = &mut st.members.get_mut(&id).expect("member").pads;
        own.clear();
        own.extend_from_slice(pads);

        let leader = st
            .members
            .values()
            .filter_map(|m| m.grid)
            .fold(own_grid, |a, g| if g.longer_than(&a) { g } else { a });
        // The first member to reach a decision point evaluates it, and the
        // decision takes effect at the point itself: no member can have
        // emitted a slot past a point that was not evaluated yet.
        let point = leader.at_or_before(t);
        if st.last_point.is_none_or(|p| p < point) {
            st.last_point = Some(point);
            evaluate(&mut st, point, now.max(t), policy, timeout);
        }

        let entries = st
            .log
            .iter()
            .filter(|e| e.seq > applied && e.at <= t)
            .copied()
            .collect();
        (entries, st.active)
    }
}

/// When no member runs, the next start is a fresh start (new origin, nothing
/// on air); membership and the operator's manual choice survive.
fn reset_if_idle(st: &mut GroupState) {
    if st.members.values().all(|m| m.grid.is_none()) {
        *st = GroupState {
            members: std::mem::take(&mut st.members),
            control: st.control,
            ..Default::default()
        };
    }
}

/// Sets each candidate's hold-off from its damping, and records it.
fn apply_damping(st: &mut GroupState, candidates: &mut [Candidate], now: ClockTime, p: &Policy) {
    for c in candidates.iter_mut() {
        let d = st.damping.get(&c.index).copied().unwrap_or_default();
        c.holdoff = d.holdoff(c.health, now, p);
        st.holdoffs.insert(c.index, c.holdoff);
    }
}

/// Combined health of each input, into `out` (cleared first) in index
/// order: unhealthy if any member's pad is.
fn combined(st: &GroupState, now: ClockTime, timeout: ClockTime, out: &mut Vec<Candidate>) {
    out.clear();
    for m in st.members.values().filter(|m| m.grid.is_some()) {
        for &(index, ref p) in &m.pads {
            let h = p.effective(now, timeout);
            let at = match out.binary_search_by_key(&index, |c| c.index) {
                Ok(at) => at,
                Err(at) => {
                    out.insert(
                        at,
                        Candidate {
                            index,
                            priority: p.priority,
                            health: Health::Waiting,
                            holdoff: ClockTime::ZERO,
                        },
                    );
                    at
                }
            };
            let c = &mut out[at];
            c.health = match (c.health, h) {
                (Health::Stalled { since: a }, Health::Stalled { since: b }) => {
                    Health::Stalled { since: a.max(b) }
                }
                (s @ Health::Stalled { .. }, _) | (_, s @ Health::Stalled { .. }) => s,
                (Health::Eos, _) | (_, Health::Eos) => Health::Eos,
                (Health::Healthy { since: a }, Health::Healthy { since: b }) => {
                    Health::Healthy { since: a.max(b) }
                }
                (h @ Health::Healthy { .. }, Health::Waiting)
                | (Health::Waiting, h @ Health::Healthy { .. }) => h,
                (Health::Waiting, Health::Waiting) => Health::Waiting,
            };
        }
    }
}

fn evaluate(
    st: &mut GroupState,
    at: ClockTime,
    now: ClockTime,
    policy: &Policy,
    timeout: ClockTime,
) {
    let mut candidates = std::mem::take(&mut st.candidates);
    combined(st, now, timeout, &mut candidates);
    apply_damping(st, &mut candidates, now, policy);
    // In rank order, decide() needs no sorted copy of its own.
    candidates.sort_unstable_by_key(|c| decide::rank(c, &st.control));
    decide_and_log(st, at, now, policy, timeout, &candidates);
    st.candidates = candidates;
}

/// Takes the decision at point `at` and logs it if it changes the input.
fn decide_and_log(
    st: &mut GroupState,
    at: ClockTime,
    now: ClockTime,
    policy: &Policy,
    timeout: ClockTime,
    candidates: &[Candidate],
) {
    let situation = Situation {
        now,
        current: st.active,
        never_started: st.started.is_none(),
        startup: st.started.is_some_and(|s| now < s + timeout),
        awaiting_best: st.started.is_none()
            && st
                .first_start
                .is_some_and(|o| now < o + policy.startup_grace),
        control: st.control,
        candidates,
    };
    let Some(sw) = decide::decide(&situation, policy) else {
        return;
    };
    if sw.to == st.active {
        return;
    }
    let health_of = |i: u32| candidates.iter().find(|c| c.index == i).map(|c| c.health);
    let stall_duration = match (sw.reason, st.active) {
        (Reason::Recovered, None) => st
            .lost_since
            .map_or(ClockTime::ZERO, |l| now.saturating_sub(l)),
        (Reason::Stall | Reason::AllLost | Reason::Eos, Some(f)) => match health_of(f) {
            Some(Health::Stalled { since }) => now.saturating_sub(since),
            _ => ClockTime::ZERO,
        },
        _ => ClockTime::ZERO,
    };
    let mut from_holdoff = ClockTime::ZERO;
    if let Some(f) = st.active {
        let mut d = st.damping.get(&f).copied().unwrap_or_default();
        if sw.reason.is_failover() {
            d = d.after_failover(at, policy);
            st.damping.insert(f, d);
        }
        from_holdoff = d.holdoff(health_of(f).unwrap_or(Health::Eos), now, policy);
        st.holdoffs.insert(f, from_holdoff);
    }
    st.seq += 1;
    let entry = Entry {
        seq: st.seq,
        at,
        from: st.active,
        to: sw.to,
        reason: sw.reason,
        stall_duration,
        from_holdoff,
    };
    st.log.push_back(entry);
    while st.log.len() > LOG_LEN {
        st.log.pop_front();
    }
    st.active = sw.to;
    if sw.to.is_none() {
        st.lost_since = Some(at);
    } else if st.started.is_none() {
        st.started = Some(at);
    }
    if sw.to.is_some() && sw.to == st.control.preferred {
        st.control.request_pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: ClockTime = ClockTime::MSECOND;

    #[test]
    fn the_clean_window_restarts_on_any_interruption() {
        let a = Arrival {
            timeout: 500 * MS,
            expected: 40 * MS,
            clean_gap: 100 * MS,
            discont: false,
        };
        let l = Local::Receiving {
            last_seen: 1000 * MS,
            since: ClockTime::ZERO,
            carry: ClockTime::ZERO,
        };
        // Up to one frame + clean-gap late: still clean.
        let (next, gap) = l.on_buffer(1140 * MS, &a);
        assert_eq!(
            (next, gap),
            (
                Local::Receiving {
                    last_seen: 1140 * MS,
                    since: ClockTime::ZERO,
                    carry: ClockTime::ZERO,
                },
                None
            )
        );
        // Later than that, but short of the timeout: interrupted.
        let (next, gap) = l.on_buffer(1141 * MS, &a);
        assert_eq!(gap, Some(141 * MS));
        assert_eq!(
            next,
            Local::Receiving {
                last_seen: 1141 * MS,
                since: 1141 * MS,
                carry: ClockTime::ZERO,
            }
        );
        // A DISCONT buffer, even on time.
        let d = Arrival { discont: true, ..a };
        assert_eq!(l.on_buffer(1040 * MS, &d).1, Some(40 * MS));
        // After a stall, or the first buffer: a fresh window, no report
        // (the stall itself was the news).
        let (next, gap) = l.on_buffer(1600 * MS, &a);
        assert_eq!(
            (next, gap),
            (
                Local::Receiving {
                    last_seen: 1600 * MS,
                    since: 1600 * MS,
                    carry: ClockTime::ZERO,
                },
                None
            )
        );
        assert_eq!(Local::Waiting.on_buffer(5 * MS, &a).1, None);
        // A low frame rate sets the expectation: 200 ms frames, 290 ms gap.
        let slow = Arrival {
            expected: 200 * MS,
            ..a
        };
        assert_eq!(l.on_buffer(1290 * MS, &slow).1, None);
    }

    #[test]
    fn a_bursty_source_is_clean_and_a_missing_burst_is_not() {
        // ffmpeg's TS muxer groups AAC frames (21.3 ms each) into PES of
        // about 300 ms: they arrive 15 at a time, 320 ms apart.
        let a = Arrival {
            timeout: 500 * MS,
            expected: 21_333 * ClockTime::USECOND,
            clean_gap: 100 * MS,
            discont: false,
        };
        let mut l = Local::fresh(ClockTime::ZERO);
        let mut t = ClockTime::ZERO;
        let burst = |l: &mut Local, t: ClockTime, n: u64| {
            let mut report = None;
            for k in 0..n {
                let (next, gap) = l.on_buffer(t + k * ClockTime::USECOND, &a);
                *l = next;
                report = report.or(gap);
            }
            report
        };
        assert_eq!(burst(&mut l, t, 15), None);
        for _ in 0..20 {
            t += 320 * MS;
            assert_eq!(burst(&mut l, t, 15), None, "a burst on time at {t}");
        }
        assert!(matches!(l, Local::Receiving { since, .. } if since == ClockTime::ZERO));
        // A burst 150 ms late: 150 ms of content missing, past clean-gap.
        t += 320 * MS + 150 * MS;
        assert!(burst(&mut l, t, 15).is_some(), "150 ms of content missing");
        // What a burst carries is capped by the timeout: a 2 s burst does
        // not excuse the next 1.9 s of nothing.
        let mut l = Local::fresh(ClockTime::ZERO);
        burst(&mut l, ClockTime::ZERO, 94);
        let (_, gap) = l.on_buffer(450 * MS, &a);
        assert_eq!(gap, None, "within the timeout's worth of carry");
        let longer = Arrival {
            timeout: 700 * MS,
            ..a
        };
        let (_, gap) = l.on_buffer(630 * MS, &longer);
        assert!(gap.is_some(), "carry beyond the timeout does not count");
    }

    #[test]
    fn grid_slots_are_exact_for_fractional_rates() {
        let g = Grid {
            origin: ClockTime::ZERO,
            num: 30000,
            den: 1001,
        };
        assert_eq!(g.slot(30000).nseconds(), 1001 * 1_000_000_000);
        for k in [0u64, 1, 2, 29, 30, 1000, 107_892] {
            let t = g.slot(k);
            assert_eq!(g.first_at_or_after(t), k);
            assert_eq!(g.at_or_before(t), t);
            assert_eq!(g.at_or_before(t + ClockTime::NSECOND), t);
        }
    }

    fn receiving(last_ms: u64) -> Vec<(u32, Published)> {
        vec![(
            0,
            Published {
                priority: 0,
                local: Local::Receiving {
                    last_seen: last_ms * MS,
                    since: ClockTime::ZERO,
                    carry: ClockTime::ZERO,
                },
            },
        )]
    }

    #[test]
    fn grouped_members_apply_one_decision_at_one_time() {
        let g = Group::private();
        let policy = Policy {
            auto_return: true,
            return_after: 5 * ClockTime::SECOND,
            manual_failover: true,
            flap_window: 300 * ClockTime::SECOND,
            max_return_after: 300 * ClockTime::SECOND,
            startup_grace: ClockTime::ZERO,
        };
        let timeout = 500 * MS;
        g.join(1);
        g.join(2);
        let (video, kv, _, _) = g.start(1, ClockTime::ZERO, 50, 1, false);
        let (audio, ka, _, _) = g.start(2, 5 * MS, 100, 1, false);
        assert_eq!((kv, ka), (0, 1), "audio aligns on the group origin");
        assert_eq!(audio.slot(ka), 10 * MS);

        let (e, active) = g.step(
            1,
            video.slot(0),
            video.slot(0),
            &receiving(0),
            &policy,
            timeout,
            0,
        );
        assert_eq!(active, Some(0));
        assert_eq!(
            (e.len(), e[0].at, e[0].reason),
            (1, ClockTime::ZERO, Reason::Start)
        );
        let (e, _) = g.step(
            2,
            audio.slot(1),
            audio.slot(1),
            &receiving(10),
            &policy,
            timeout,
            0,
        );
        assert_eq!(e.len(), 1, "audio applies the start at its first slot");

        // Input 0 goes silent after 20 ms: the video member sees it first.
        let (e, active) = g.step(1, 520 * MS, 520 * MS, &receiving(20), &policy, timeout, 1);
        assert_eq!(
            (active, e[0].reason, e[0].at),
            (None, Reason::AllLost, 520 * MS)
        );
        assert_eq!(e[0].stall_duration, 500 * MS);
        let (e, _) = g.step(2, 510 * MS, 510 * MS, &receiving(20), &policy, timeout, 1);
        assert!(
            e.is_empty(),
            "a lagging member applies it at its own slot 520 ms"
        );
        let (e, _) = g.step(2, 520 * MS, 520 * MS, &receiving(20), &policy, timeout, 1);
        assert_eq!(e[0].at, 520 * MS);

        // It returns (video publishes first), then the audio member alone
        // loses its input and reaches the next point first.
        let back = |last_seen, since| {
            vec![(
                0,
                Published {
                    priority: 0,
                    local: Local::Receiving {
                        last_seen,
                        since,
                        carry: ClockTime::ZERO,
                    },
                },
            )]
        };
        let (e, _) = g.step(
            2,
            530 * MS,
            530 * MS,
            &back(530 * MS, 530 * MS),
            &policy,
            timeout,
            2,
        );
        assert!(e.is_empty(), "530 ms is no decision point");
        let (e, active) = g.step(
            1,
            540 * MS,
            540 * MS,
            &back(540 * MS, 530 * MS),
            &policy,
            timeout,
            2,
        );
        assert_eq!(
            (active, e[0].reason, e[0].at),
            (Some(0), Reason::Recovered, 540 * MS)
        );
        let (e, _) = g.step(
            2,
            540 * MS,
            540 * MS,
            &back(540 * MS, 530 * MS),
            &policy,
            timeout,
            2,
        );
        assert_eq!(e[0].at, 540 * MS);
        let (e, active) = g.step(
            2,
            1100 * MS,
            1101 * MS,
            &back(560 * MS, 530 * MS),
            &policy,
            timeout,
            3,
        );
        assert_eq!(
            (active, e[0].reason, e[0].at),
            (None, Reason::AllLost, 1100 * MS)
        );
        let (e, _) = g.step(
            1,
            1100 * MS,
            1102 * MS,
            &back(1100 * MS, 530 * MS),
            &policy,
            timeout,
            3,
        );
        assert_eq!(e[0].at, 1100 * MS, "video cuts at the same running time");
    }

    #[test]
    fn an_epoch_grid_gives_two_groups_the_same_slots_whenever_they_start() {
        // Two processes (two groups) on the same UTC-based running time,
        // started 1.234 s apart: the same slot times.
        let a = Group::private();
        let b = Group::private();
        let t0 = ClockTime::from_seconds(1_796_568_000);
        let (ga, ka, _, _) = a.start(1, t0 + 7 * MS, 25, 1, true);
        let (gb, kb, _, _) = b.start(1, t0 + 1241 * MS, 25, 1, true);
        assert_eq!(ga.slot(ka), t0 + 40 * MS);
        assert_eq!(gb.slot(kb), t0 + 1280 * MS);
        assert_eq!(ga.slot(ka + 31), gb.slot(kb));
        // Without it, each grid starts where its group did.
        let c = Group::private();
        let (gc, kc, _, _) = c.start(1, t0 + 7 * MS, 25, 1, false);
        assert_eq!(gc.slot(kc), t0 + 7 * MS);
    }
}
