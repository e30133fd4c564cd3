//! The channel's state (starting, on-air, degraded, off-air, stopped),
//! computed in one place by a pure function; the one-line status; and the
//! alerts raised as they change.

use std::time::Duration;

use tracing::{info, warn};

use super::{Channel, ChannelEvent, Phase};
use crate::uri::InputKind;

/// The state of a channel as operators see it (D-Bus `State`, metrics,
/// the status page, systemd's STATUS=).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelState {
    /// Built, nothing on air yet.
    #[default]
    Starting,
    /// The first input on air, every output up.
    OnAir,
    /// On air, but on a backup input or with an output down.
    Degraded,
    /// The slate or nothing on air.
    OffAir,
    /// Stopped on request (D-Bus `Stop`).
    Stopped,
}

impl ChannelState {
    pub const ALL: [ChannelState; 5] = [
        ChannelState::Starting,
        ChannelState::OnAir,
        ChannelState::Degraded,
        ChannelState::OffAir,
        ChannelState::Stopped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChannelState::Starting => "starting",
            ChannelState::OnAir => "on-air",
            ChannelState::Degraded => "degraded",
            ChannelState::OffAir => "off-air",
            ChannelState::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ChannelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is on air, as far as the state is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Nothing,
    Slate,
    /// An input other than the slate, by priority (0: the first).
    Input(usize),
}

/// Everything the state depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub stopped: bool,
    pub on_air: Program,
    /// Outputs starting or delivering: only a failed output degrades.
    pub outputs_up: usize,
    pub outputs: usize,
}

/// The state of the channel while it runs, from what it was and the
/// facts: `Starting` lasts until something first goes on air.
pub fn running_state(prev: ChannelState, f: &Facts) -> ChannelState {
    match f.on_air {
        Program::Nothing if prev == ChannelState::Starting => ChannelState::Starting,
        Program::Nothing | Program::Slate => ChannelState::OffAir,
        Program::Input(i) if i > 0 || f.outputs_up < f.outputs => ChannelState::Degraded,
        Program::Input(_) => ChannelState::OnAir,
    }
}

/// The state shown: `Stopped` over whatever it was running.
pub fn shown_state(running: ChannelState, f: &Facts) -> ChannelState {
    if f.stopped {
        ChannelState::Stopped
    } else {
        running
    }
}

/// A one-line view for logs and systemd's STATUS=.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The running state (a stopped channel shows off-air here).
    pub state: ChannelState,
    pub active: Option<String>,
    pub inputs_live: usize,
    pub inputs: usize,
    pub outputs_up: usize,
    pub outputs: usize,
    /// Per encoder, the backend on air: "video x264".
    pub encoders: String,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}; inputs {}/{}, encoders {}, outputs {}/{})",
            self.state,
            self.active.as_deref().unwrap_or("nothing on air"),
            self.inputs_live,
            self.inputs,
            self.encoders,
            self.outputs_up,
            self.outputs
        )
    }
}

impl Channel {
    /// The facts the state is computed from.
    pub(super) fn facts(&self) -> Facts {
        Facts {
            stopped: self.stopped,
            on_air: match self.active {
                None => Program::Nothing,
                Some(i) if matches!(self.inputs[i].kind, InputKind::Slate(_)) => Program::Slate,
                Some(i) => Program::Input(i),
            },
            outputs_up: self
                .outputs
                .iter()
                .filter(|o| {
                    // A standby's held output is up: built, ready to send.
                    matches!(
                        o.phase,
                        Phase::Live { .. } | Phase::Starting { .. } | Phase::Held
                    )
                })
                .count(),
            outputs: self.outputs.len(),
        }
    }

    /// Recomputes the status; a change of state is logged, and going off
    /// air or back is alerted.
    pub(super) fn update_status(&mut self) {
        let facts = self.facts();
        let inputs_live = self
            .inputs
            .iter()
            .filter(|i| matches!(i.phase, Phase::Live { .. }))
            .count();
        let next = Status {
            state: running_state(self.status.state, &facts),
            active: self.active.map(|i| self.inputs[i].id.clone()),
            inputs_live,
            inputs: self.inputs.len(),
            outputs_up: facts.outputs_up,
            outputs: self.outputs.len(),
            encoders: self
                .renditions
                .iter()
                .map(|r| format!("{} {}", r.id, r.on_air()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let (old, new) = (self.status.state, next.state);
        if new != old {
            let line = format!("channel {new}");
            if new == ChannelState::OnAir {
                info!(channel = %self.id, event = "channel-state", state = new.name(), "{line}");
            } else {
                warn!(channel = %self.id, event = "channel-state", state = new.name(), "{line}");
            }
        }
        let on_air = next.active.clone();
        self.status = next;
        let off = ChannelState::OffAir;
        if new != old && (new == off || old == off) {
            let id = self.id.clone();
            let summary = match (new == off, on_air) {
                (true, Some(slate)) => format!("{id}: off air, the slate ({slate}) is on air"),
                (true, None) => format!("{id}: off air, nothing on air (black)"),
                (false, Some(input)) => format!("{id}: back on air with {input}"),
                (false, None) => format!("{id}: {new}"),
            };
            self.alert("off-air", &id, new == off, summary);
        }
    }

    /// Where this channel's alerts go, and how long an output may be down
    /// before it is alerted.
    pub fn set_alerts(&mut self, alerts: crate::alerts::Alerts, output_grace: Duration) {
        self.alerts = alerts;
        self.output_grace = output_grace;
    }

    /// Raises or clears an alert once (a repeat of the same state is not
    /// sent): webhooks, the log, and the D-Bus `Alarm` signal.
    pub(super) fn alert(&mut self, kind: &str, target: &str, raised: bool, summary: String) {
        let key = (kind.to_owned(), target.to_owned());
        let changed = if raised {
            self.raised.insert(key)
        } else {
            self.raised.remove(&key)
        };
        if !changed {
            return;
        }
        self.note_event(summary.clone());
        self.emit(ChannelEvent::Alarm {
            target: target.to_owned(),
            kind: kind.to_owned(),
            raised,
        });
        self.alerts.send(crate::alerts::Alert {
            channel: self.id.clone(),
            target: target.to_owned(),
            kind: kind.to_owned(),
            raised,
            time_us: nonstop_api::now_us(),
            summary,
        });
    }

    /// Keeps `text` among the status page's recent events.
    pub(super) fn note_event(&mut self, text: String) {
        self.recent.push_front((nonstop_api::now_us(), text));
        self.recent.truncate(20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChannelState::*;

    fn facts(on_air: Program, outputs_up: usize) -> Facts {
        Facts {
            stopped: false,
            on_air,
            outputs_up,
            outputs: 2,
        }
    }

    #[test]
    fn starting_lasts_until_something_goes_on_air() {
        let f = facts(Program::Nothing, 0);
        assert_eq!(running_state(Starting, &f), Starting);
        assert_eq!(running_state(OnAir, &f), OffAir);
        assert_eq!(running_state(Degraded, &f), OffAir);
        assert_eq!(running_state(Starting, &facts(Program::Input(0), 2)), OnAir);
    }

    #[test]
    fn the_slate_is_off_air_and_a_backup_or_a_failed_output_degraded() {
        for prev in ChannelState::ALL {
            assert_eq!(running_state(prev, &facts(Program::Slate, 2)), OffAir);
            assert_eq!(running_state(prev, &facts(Program::Input(1), 2)), Degraded);
            assert_eq!(running_state(prev, &facts(Program::Input(0), 1)), Degraded);
            assert_eq!(running_state(prev, &facts(Program::Input(0), 2)), OnAir);
        }
    }

    #[test]
    fn stopped_shows_over_any_running_state() {
        let mut f = facts(Program::Input(0), 2);
        f.stopped = true;
        for s in ChannelState::ALL {
            assert_eq!(shown_state(s, &f), Stopped);
        }
        f.stopped = false;
        assert_eq!(shown_state(Degraded, &f), Degraded);
    }

    #[test]
    fn names_are_the_documented_ones() {
        let names: Vec<&str> = ChannelState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["starting", "on-air", "degraded", "off-air", "stopped"]
        );
    }
}
