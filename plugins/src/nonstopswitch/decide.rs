//! Which input goes on air: the switching policy as a pure function of the
//! inputs' health, so every rule (failover, hold-off before returning, manual
//! mode) is unit-tested without clocks or threads.

use gst::ClockTime;

/// Health of one input as seen at the decision time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Never delivered data (since start, or since its caps changed).
    Waiting,
    /// Delivering; continuously since `since`.
    Healthy { since: ClockTime },
    /// Delivered nothing since `since` (its last buffer), for at least the timeout.
    Stalled { since: ClockTime },
    /// Reached end-of-stream: lost until it flushes.
    Eos,
}

impl Health {
    pub fn is_healthy(self) -> bool {
        matches!(self, Health::Healthy { .. })
    }
}

/// Why the switch changed inputs; the `reason` field of `nonstop-switch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first input put on air.
    Start,
    /// The input on air stalled (no data for `timeout`, or flagged unhealthy).
    Stall,
    /// A better input has been healthy for `return-after` (or came back when
    /// nothing was on air).
    Recovered,
    /// An operator chose the input (`active-pad`).
    Manual,
    /// The input on air reached end-of-stream or was released.
    Eos,
    /// No input is healthy: repeat, then black / silence.
    AllLost,
}

impl Reason {
    /// The switch left the input on air because it failed: this counts
    /// against that input's flap damping.
    pub fn is_failover(self) -> bool {
        matches!(self, Reason::Stall | Reason::AllLost | Reason::Eos)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::Stall => "stall",
            Reason::Recovered => "recovered",
            Reason::Manual => "manual",
            Reason::Eos => "eos",
            Reason::AllLost => "all-lost",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub index: u32,
    pub priority: u32,
    pub health: Health,
    /// How long it must be clean before the switch returns to it: the
    /// input's flap-damped hold-off (`Damping::holdoff`).
    pub holdoff: ClockTime,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub auto_return: bool,
    pub return_after: ClockTime,
    pub manual_failover: bool,
    /// Failovers away from one input closer together than this double its
    /// hold-off; an input clean this long is back to `return_after`.
    pub flap_window: ClockTime,
    /// The hold-off never grows past this (nor below `return_after`).
    pub max_return_after: ClockTime,
    /// At start, how long a lower input waits for a better one that has
    /// not delivered yet.
    pub startup_grace: ClockTime,
}

/// Past this many doublings any cap is reached (2^40 ns is 18 minutes) and
/// the shift below would overflow.
const MAX_DOUBLINGS: u32 = 40;

/// Flap damping of one input: a source that keeps failing is not put back
/// on air every `return_after`. Each failover away from it within
/// `flap_window` of the previous one doubles its hold-off, up to
/// `max_return_after`; once it has been clean for `flap_window` the
/// hold-off is `return_after` again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Damping {
    pub doublings: u32,
    pub last_failover: Option<ClockTime>,
}

impl Damping {
    /// The damping after the switch failed over away from the input at `at`.
    pub fn after_failover(self, at: ClockTime, p: &Policy) -> Damping {
        let repeated = self
            .last_failover
            .is_some_and(|l| at.saturating_sub(l) < p.flap_window);
        Damping {
            doublings: if repeated {
                (self.doublings + 1).min(MAX_DOUBLINGS)
            } else {
                0
            },
            last_failover: Some(at),
        }
    }

    /// The hold-off before a return to the input at `now`, given its health
    /// (a `Healthy { since }` input has been clean since `since`).
    pub fn holdoff(self, health: Health, now: ClockTime, p: &Policy) -> ClockTime {
        let settled = matches!(health, Health::Healthy { since }
            if now.saturating_sub(since) >= p.flap_window);
        if self.doublings == 0 || settled {
            return p.return_after;
        }
        let cap = p.max_return_after.max(p.return_after);
        let factor = 1u64 << self.doublings.min(MAX_DOUBLINGS);
        ClockTime::from_nseconds(p.return_after.nseconds().saturating_mul(factor)).min(cap)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Control {
    /// Manual mode: `preferred` ranks above every priority.
    pub manual: bool,
    pub preferred: Option<u32>,
    /// An operator request not yet satisfied: honoured without hold-off as
    /// soon as the preferred input is healthy.
    pub request_pending: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    pub now: ClockTime,
    /// Input on air, `None` before the first choice or when all are lost.
    pub current: Option<u32>,
    /// True until something has been put on air once.
    pub never_started: bool,
    /// Within the start-up window, higher-priority inputs are taken without
    /// hold-off: they have not failed, they merely started a little later.
    pub startup: bool,
    /// Nothing went on air yet and the start-up grace runs: a lower input
    /// waits while a better one has not delivered yet, so a channel does
    /// not start on its backup only to cut to its primary a moment later.
    pub awaiting_best: bool,
    pub control: Control,
    pub candidates: &'a [Candidate],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub to: Option<u32>,
    pub reason: Reason,
}

/// Order of preference: the operator's pinned input, then priority, then index.
pub fn rank(c: &Candidate, control: &Control) -> (u8, u32, u32) {
    let pinned = control.manual && control.preferred == Some(c.index);
    (u8::from(!pinned), c.priority, c.index)
}

/// Decides whether to change the input on air. `None` keeps the current one.
pub fn decide(s: &Situation, p: &Policy) -> Option<Switch> {
    // The group passes its candidates in rank order (it decides at every
    // slot, so that costs no allocation); anyone else gets a sorted copy.
    let sorted;
    let ordered: &[Candidate] = if s.candidates.is_sorted_by_key(|c| rank(c, &s.control)) {
        s.candidates
    } else {
        let mut v = s.candidates.to_vec();
        v.sort_by_key(|c| rank(c, &s.control));
        sorted = v;
        &sorted
    };
    let find = |i: u32| s.candidates.iter().find(|c| c.index == i);
    let current = s.current.and_then(find);

    if s.control.manual {
        if let Some(pref) = s.control.preferred.and_then(find) {
            if !p.manual_failover {
                // Pinned by the operator: stay on it whatever its health.
                return (s.current != Some(pref.index)).then_some(Switch {
                    to: Some(pref.index),
                    reason: Reason::Manual,
                });
            }
            if s.control.request_pending && pref.health.is_healthy() {
                return (s.current != Some(pref.index)).then_some(Switch {
                    to: Some(pref.index),
                    reason: Reason::Manual,
                });
            }
        }
    }

    if let Some(cur) = current.filter(|c| c.health.is_healthy()) {
        if !p.auto_return && !s.startup {
            return None;
        }
        for c in ordered {
            if c.index == cur.index {
                return None;
            }
            if let Health::Healthy { since } = c.health {
                // The operator's choice is not damped: it returns after the
                // plain hold-off, as it always did.
                let pinned = s.control.manual && s.control.preferred == Some(c.index);
                let holdoff = if pinned { p.return_after } else { c.holdoff };
                let held = s.now.saturating_sub(since) >= holdoff;
                if s.startup || held {
                    return Some(Switch {
                        to: Some(c.index),
                        reason: if s.startup {
                            Reason::Start
                        } else {
                            Reason::Recovered
                        },
                    });
                }
            }
        }
        return None;
    }

    // Nothing healthy on air: take the best healthy input at once.
    match ordered.iter().find(|c| c.health.is_healthy()) {
        Some(best)
            if s.never_started
                && s.awaiting_best
                && ordered
                    .iter()
                    .take_while(|c| c.index != best.index)
                    .any(|c| c.health == Health::Waiting) =>
        {
            None
        }
        Some(best) => {
            let reason = match (s.current, current.map(|c| c.health)) {
                (None, _) if s.never_started => Reason::Start,
                (None, _) => Reason::Recovered,
                (Some(_), None) | (Some(_), Some(Health::Eos)) => Reason::Eos,
                (Some(_), Some(_)) => Reason::Stall,
            };
            Some(Switch {
                to: Some(best.index),
                reason,
            })
        }
        None if s.current.is_some() => Some(Switch {
            to: None,
            reason: Reason::AllLost,
        }),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: ClockTime = ClockTime::MSECOND;

    fn policy() -> Policy {
        Policy {
            auto_return: true,
            return_after: ClockTime::from_seconds(5),
            manual_failover: true,
            flap_window: ClockTime::from_seconds(300),
            max_return_after: ClockTime::from_seconds(300),
            startup_grace: ClockTime::from_seconds(1),
        }
    }

    fn healthy(index: u32, since_ms: u64) -> Candidate {
        Candidate {
            index,
            priority: index,
            health: Health::Healthy {
                since: since_ms * MS,
            },
            holdoff: policy().return_after,
        }
    }

    fn stalled(index: u32) -> Candidate {
        Candidate {
            index,
            priority: index,
            health: Health::Stalled {
                since: ClockTime::ZERO,
            },
            holdoff: policy().return_after,
        }
    }

    fn situation<'a>(now_ms: u64, current: Option<u32>, c: &'a [Candidate]) -> Situation<'a> {
        Situation {
            now: now_ms * MS,
            current,
            never_started: false,
            startup: false,
            awaiting_best: false,
            control: Control::default(),
            candidates: c,
        }
    }

    #[test]
    fn first_choice_is_best_healthy() {
        let c = [stalled(0), healthy(1, 0), healthy(2, 0)];
        let mut s = situation(100, None, &c);
        s.never_started = true;
        assert_eq!(
            decide(&s, &policy()),
            Some(Switch {
                to: Some(1),
                reason: Reason::Start
            })
        );
    }

    #[test]
    fn stall_fails_over_to_best_healthy() {
        let c = [stalled(0), healthy(1, 0), healthy(2, 0)];
        let s = situation(10_000, Some(0), &c);
        assert_eq!(
            decide(&s, &policy()),
            Some(Switch {
                to: Some(1),
                reason: Reason::Stall
            })
        );
    }

    #[test]
    fn returns_only_after_hold_off() {
        let c = [healthy(0, 10_000), healthy(1, 0)];
        assert_eq!(decide(&situation(14_999, Some(1), &c), &policy()), None);
        assert_eq!(
            decide(&situation(15_000, Some(1), &c), &policy()),
            Some(Switch {
                to: Some(0),
                reason: Reason::Recovered
            })
        );
    }

    #[test]
    fn no_auto_return_stays_on_backup() {
        let c = [healthy(0, 0), healthy(1, 0)];
        let p = Policy {
            auto_return: false,
            ..policy()
        };
        assert_eq!(decide(&situation(60_000, Some(1), &c), &p), None);
    }

    #[test]
    fn startup_window_takes_late_primary_without_hold_off() {
        let c = [healthy(0, 90), healthy(1, 0)];
        let mut s = situation(100, Some(1), &c);
        s.startup = true;
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(0));
    }

    #[test]
    fn lower_priority_never_preempts_healthy_current() {
        let c = [healthy(0, 0), healthy(1, 0)];
        assert_eq!(decide(&situation(60_000, Some(0), &c), &policy()), None);
    }

    #[test]
    fn all_lost_then_recovered() {
        let c = [stalled(0), stalled(1)];
        assert_eq!(
            decide(&situation(1000, Some(0), &c), &policy()),
            Some(Switch {
                to: None,
                reason: Reason::AllLost
            })
        );
        assert_eq!(decide(&situation(1020, None, &c), &policy()), None);
        let c = [stalled(0), healthy(1, 1500)];
        assert_eq!(
            decide(&situation(1520, None, &c), &policy()),
            Some(Switch {
                to: Some(1),
                reason: Reason::Recovered
            })
        );
    }

    #[test]
    fn eos_or_released_current_is_reason_eos() {
        let c = [
            Candidate {
                index: 0,
                priority: 0,
                health: Health::Eos,
                holdoff: policy().return_after,
            },
            healthy(1, 0),
        ];
        assert_eq!(
            decide(&situation(100, Some(0), &c), &policy())
                .unwrap()
                .reason,
            Reason::Eos
        );
        let c = [healthy(1, 0)];
        assert_eq!(
            decide(&situation(100, Some(0), &c), &policy())
                .unwrap()
                .reason,
            Reason::Eos
        );
    }

    #[test]
    fn priority_property_overrides_index() {
        let mut c = [healthy(0, 0), healthy(1, 0)];
        c[0].priority = 5;
        c[1].priority = 1;
        let mut s = situation(100, None, &c);
        s.never_started = true;
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(1));
    }

    #[test]
    fn manual_request_is_immediate_and_pins() {
        let c = [healthy(0, 0), healthy(1, 0)];
        let mut s = situation(100, Some(0), &c);
        s.control = Control {
            manual: true,
            preferred: Some(1),
            request_pending: true,
        };
        assert_eq!(
            decide(&s, &policy()),
            Some(Switch {
                to: Some(1),
                reason: Reason::Manual
            })
        );
        // Satisfied: the higher-priority input does not take over.
        s.current = Some(1);
        s.control.request_pending = false;
        s.now = 60_000 * MS;
        assert_eq!(decide(&s, &policy()), None);
    }

    #[test]
    fn manual_failover_follows_the_flag() {
        let c = [healthy(0, 0), stalled(1)];
        let mut s = situation(100, Some(1), &c);
        s.control = Control {
            manual: true,
            preferred: Some(1),
            request_pending: false,
        };
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(0));
        let pinned = Policy {
            manual_failover: false,
            ..policy()
        };
        assert_eq!(decide(&s, &pinned), None);
    }

    #[test]
    fn manual_returns_to_preferred_after_hold_off() {
        let c = [healthy(0, 0), healthy(1, 1_000)];
        let mut s = situation(5_999, Some(0), &c);
        s.control = Control {
            manual: true,
            preferred: Some(1),
            request_pending: false,
        };
        assert_eq!(decide(&s, &policy()), None);
        s.now = 6_000 * MS;
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(1));
    }

    #[test]
    fn manual_request_for_unhealthy_input_waits_for_it() {
        let c = [healthy(0, 0), stalled(1)];
        let mut s = situation(100, Some(0), &c);
        s.control = Control {
            manual: true,
            preferred: Some(1),
            request_pending: true,
        };
        assert_eq!(decide(&s, &policy()), None);
    }

    /// A primary (input 0) that goes up and down on a schedule and a backup
    /// (input 1) that never fails, judged every 20 ms as the group does:
    /// stalled after 500 ms without data, clean since its last resume.
    /// Returns every switch as (ms, to, reason) and the final damping.
    fn simulate(
        p: &Policy,
        down: &[(u64, u64)],
        until_ms: u64,
        control: Control,
    ) -> (Vec<(u64, Option<u32>, Reason)>, Damping) {
        let timeout = 500;
        let mut damping = [Damping::default(); 2];
        let mut current = None;
        let mut never_started = true;
        let mut switches = Vec::new();
        let mut clean_since = 0;
        let mut last_seen = 0;
        for now in (0..=until_ms).step_by(20) {
            let is_down = down.iter().any(|&(a, b)| now >= a && now < b);
            if !is_down {
                if now > last_seen + 20 {
                    clean_since = now;
                }
                last_seen = now;
            }
            let primary = if now - last_seen >= timeout {
                Health::Stalled {
                    since: last_seen * MS,
                }
            } else {
                Health::Healthy {
                    since: clean_since * MS,
                }
            };
            let healths = [
                primary,
                Health::Healthy {
                    since: ClockTime::ZERO,
                },
            ];
            let c: Vec<Candidate> = (0..2)
                .map(|i| Candidate {
                    index: i as u32,
                    priority: i as u32,
                    health: healths[i],
                    holdoff: damping[i].holdoff(healths[i], now * MS, p),
                })
                .collect();
            let s = Situation {
                now: now * MS,
                current,
                never_started,
                startup: false,
                awaiting_best: false,
                control,
                candidates: &c,
            };
            if let Some(sw) = decide(&s, p) {
                if let (true, Some(f)) = (sw.reason.is_failover(), current) {
                    damping[f as usize] = damping[f as usize].after_failover(now * MS, p);
                }
                switches.push((now, sw.to, sw.reason));
                current = sw.to;
                never_started = false;
            }
        }
        (switches, damping[0])
    }

    fn returns(sw: &[(u64, Option<u32>, Reason)]) -> Vec<u64> {
        sw.iter()
            .filter(|(_, to, r)| *to == Some(0) && *r == Reason::Recovered)
            .map(|(t, _, _)| *t)
            .collect()
    }

    #[test]
    fn a_single_long_outage_returns_after_exactly_return_after() {
        let (sw, d) = simulate(&policy(), &[(10_000, 20_000)], 40_000, Control::default());
        assert_eq!(
            sw[1],
            (10_480, Some(1), Reason::Stall),
            "500 ms after the last data at 9.98 s"
        );
        assert_eq!(returns(&sw), [25_000]);
        assert_eq!(d.doublings, 0);
        assert_eq!(
            d.holdoff(
                Health::Healthy {
                    since: ClockTime::ZERO
                },
                40_000 * MS,
                &policy()
            ),
            policy().return_after
        );
    }

    #[test]
    fn flapping_faster_than_timeout_never_returns_until_clean() {
        // First a real outage puts the backup on air; then the primary
        // flaps (300 ms down, 300 ms up) without ever reaching the timeout.
        let mut down = vec![(10_000, 12_000)];
        down.extend((0..30).map(|i| (12_300 + i * 600, 12_600 + i * 600)));
        let last_resume = 12_600 + 29 * 600;
        let (sw, _) = simulate(&policy(), &down, 60_000, Control::default());
        assert_eq!(
            returns(&sw),
            [last_resume + 5_000],
            "back only return-after after the flapping ended: {sw:?}"
        );
    }

    #[test]
    fn flapping_on_air_faster_than_timeout_is_no_failover() {
        let down: Vec<_> = (0..20)
            .map(|i| (5_000 + i * 600, 5_300 + i * 600))
            .collect();
        let (sw, _) = simulate(&policy(), &down, 30_000, Control::default());
        assert_eq!(sw, [(0, Some(0), Reason::Start)], "judged by timeout alone");
    }

    #[test]
    fn flapping_slower_than_timeout_doubles_the_hold_off() {
        // Down 1 s, then up 7 s (longer than return-after): the first return
        // comes after 5 s; every further failover within the flap window
        // doubles the hold-off, so the later outages are not followed by a
        // return until the source stays clean long enough.
        let down: Vec<_> = (0..5)
            .map(|i| (10_000 + i * 8_000, 11_000 + i * 8_000))
            .collect();
        let p = policy();
        let (sw, d) = simulate(&p, &down, 200_000, Control::default());
        let failovers: Vec<u64> = sw
            .iter()
            .filter(|(_, to, r)| *to == Some(1) && *r == Reason::Stall)
            .map(|(t, _, _)| *t)
            .collect();
        // Outage 1 → return at 16 s; outage 2 (18 s) → hold-off 10 s, not
        // met by the 7 s up-time before outage 3; it stays off air from
        // then on, and returns 10 s after the last resume (43 s).
        assert_eq!(failovers, [10_480, 18_480]);
        assert_eq!(returns(&sw), [16_000, 53_000]);
        assert_eq!(d.doublings, 1);
    }

    #[test]
    fn the_hold_off_is_capped_and_decays_once_clean_for_the_flap_window() {
        let p = Policy {
            return_after: ClockTime::from_seconds(2),
            max_return_after: ClockTime::from_seconds(10),
            flap_window: ClockTime::from_seconds(60),
            ..policy()
        };
        let mut d = Damping::default();
        let mut holdoffs = Vec::new();
        for i in 0..6u64 {
            d = d.after_failover(ClockTime::from_seconds(10 * i), &p);
            let h = Health::Healthy {
                since: ClockTime::from_seconds(10 * i + 1),
            };
            holdoffs.push(
                d.holdoff(h, ClockTime::from_seconds(10 * i + 2), &p)
                    .seconds(),
            );
        }
        assert_eq!(holdoffs, [2, 4, 8, 10, 10, 10]);
        let since = ClockTime::from_seconds(51);
        let h = Health::Healthy { since };
        assert_eq!(
            d.holdoff(h, since + ClockTime::from_seconds(59), &p)
                .seconds(),
            10
        );
        assert_eq!(
            d.holdoff(h, since + ClockTime::from_seconds(60), &p)
                .seconds(),
            2
        );
        // A failover long after the last one starts the doubling over.
        d = d.after_failover(ClockTime::from_seconds(200), &p);
        assert_eq!(d.doublings, 0);
    }

    #[test]
    fn manual_mode_and_operator_requests_bypass_the_damping() {
        let p = policy();
        let damped = Damping {
            doublings: 3,
            last_failover: Some(ClockTime::ZERO),
        };
        let h = Health::Healthy {
            since: ClockTime::from_seconds(1),
        };
        let c = [
            healthy(0, 0),
            Candidate {
                holdoff: damped.holdoff(h, ClockTime::from_seconds(6), &p),
                ..healthy(1, 1_000)
            },
        ];
        assert_eq!(c[1].holdoff, ClockTime::from_seconds(40));
        // Auto mode would wait 40 s; the operator's pinned input returns
        // after the plain return-after...
        let mut s = situation(6_000, Some(0), &c);
        s.control = Control {
            manual: true,
            preferred: Some(1),
            request_pending: false,
        };
        assert_eq!(decide(&s, &p).unwrap().to, Some(1));
        // ...and a pending request at once.
        s.now = 1_500 * MS;
        s.control.request_pending = true;
        assert_eq!(decide(&s, &p).unwrap().reason, Reason::Manual);
        // In auto mode the damped input (if it were better) waits.
        let c = [
            Candidate {
                holdoff: ClockTime::from_seconds(40),
                ..healthy(0, 1_000)
            },
            healthy(1, 0),
        ];
        assert_eq!(decide(&situation(6_000, Some(1), &c), &p), None);
        assert_eq!(
            decide(&situation(41_000, Some(1), &c), &p).unwrap().to,
            Some(0)
        );
    }

    #[test]
    fn at_start_a_lower_input_waits_the_grace_for_a_better_one() {
        let waiting = |index| Candidate {
            health: Health::Waiting,
            ..healthy(index, 0)
        };
        let c = [waiting(0), healthy(1, 0), healthy(2, 0)];
        let mut s = situation(100, None, &c);
        s.never_started = true;
        s.awaiting_best = true;
        assert_eq!(decide(&s, &policy()), None, "the primary may still come");
        // The grace is over: the best that is there.
        s.awaiting_best = false;
        assert_eq!(
            decide(&s, &policy()),
            Some(Switch {
                to: Some(1),
                reason: Reason::Start
            })
        );
        // A better input that delivered and died is not waited for.
        let c = [stalled(0), healthy(1, 0)];
        let mut s = situation(100, None, &c);
        s.never_started = true;
        s.awaiting_best = true;
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(1));
        // The best is there: no wait.
        let c = [healthy(0, 0), waiting(1)];
        let mut s = situation(100, None, &c);
        s.never_started = true;
        s.awaiting_best = true;
        assert_eq!(decide(&s, &policy()).unwrap().to, Some(0));
    }
}
