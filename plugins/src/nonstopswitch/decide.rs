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
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub auto_return: bool,
    pub return_after: ClockTime,
    pub manual_failover: bool,
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
    pub control: Control,
    pub candidates: &'a [Candidate],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    pub to: Option<u32>,
    pub reason: Reason,
}

fn rank(c: &Candidate, control: &Control) -> (u8, u32, u32) {
    let pinned = control.manual && control.preferred == Some(c.index);
    (u8::from(!pinned), c.priority, c.index)
}

/// Decides whether to change the input on air. `None` keeps the current one.
pub fn decide(s: &Situation, p: &Policy) -> Option<Switch> {
    let mut ordered: Vec<&Candidate> = s.candidates.iter().collect();
    ordered.sort_by_key(|c| rank(c, &s.control));
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
                let held = s.now.saturating_sub(since) >= p.return_after;
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
        }
    }

    fn healthy(index: u32, since_ms: u64) -> Candidate {
        Candidate {
            index,
            priority: index,
            health: Health::Healthy {
                since: since_ms * MS,
            },
        }
    }

    fn stalled(index: u32) -> Candidate {
        Candidate {
            index,
            priority: index,
            health: Health::Stalled {
                since: ClockTime::ZERO,
            },
        }
    }

    fn situation<'a>(now_ms: u64, current: Option<u32>, c: &'a [Candidate]) -> Situation<'a> {
        Situation {
            now: now_ms * MS,
            current,
            never_started: false,
            startup: false,
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
}
