//! What an operator may ask of a channel (switch, mode, restarts,
//! start/stop, drills): the commands, their checks, their refusals.

use std::time::Duration;

use gst::prelude::*;

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::drill::DrillReport;
use super::{Channel, ChannelEvent};

/// A command's refusal, with what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlError {
    NoSuchInput(String),
    NoSuchOutput(String),
    InvalidArgument(String),
    Busy(String),
}

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtlError::NoSuchInput(m)
            | CtlError::NoSuchOutput(m)
            | CtlError::InvalidArgument(m)
            | CtlError::Busy(m) => f.write_str(m),
        }
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, CtlError>>;

#[derive(Debug)]
pub enum Command {
    SwitchTo(String, Reply<()>),
    SetMode(String, Reply<()>),
    RestartInput(String, Reply<()>),
    RestartOutput(String, Reply<()>),
    Start(Reply<()>),
    Stop(Reply<()>),
    Drill {
        kind: String,
        target: String,
        duration: Duration,
        reply: Reply<DrillReport>,
    },
    /// The fleet's decision: lead, stand by, or neither.
    SetSeat(super::Seat),
    /// An SCTE-35 cue: its splice_event_id back.
    InsertCue {
        kind: String,
        duration: Duration,
        at: super::CueAt,
        reply: Reply<u32>,
    },
}

// The checks of what D-Bus callers send, before the channel is touched:
// public (and pure) so that fuzz/ can drive them with arbitrary strings.

/// `SetMode`'s argument: the switch's mode nick.
pub fn parse_mode(mode: &str) -> Result<&'static str, CtlError> {
    match mode {
        "auto" => Ok("auto"),
        "manual" => Ok("manual"),
        other => Err(CtlError::InvalidArgument(format!(
            "mode \"{other}\" is not auto or manual"
        ))),
    }
}

impl Channel {
    pub(super) fn input_index(&self, id: &str) -> Result<usize, CtlError> {
        let ids: Vec<&str> = self.inputs.iter().map(|i| i.id.as_str()).collect();
        self.index_of("input", id, &ids)
            .map_err(CtlError::NoSuchInput)
    }

    pub(super) fn output_index(&self, id: &str) -> Result<usize, CtlError> {
        let ids: Vec<&str> = self.outputs.iter().map(|o| o.id.as_str()).collect();
        self.index_of("output", id, &ids)
            .map_err(CtlError::NoSuchOutput)
    }

    /// Where `id` is among `ids`, or a refusal naming those there are.
    fn index_of(&self, what: &str, id: &str, ids: &[&str]) -> Result<usize, String> {
        ids.iter().position(|i| *i == id).ok_or_else(|| {
            format!(
                "channel {} has no {what} \"{id}\"; it has {}",
                self.id,
                ids.join(", ")
            )
        })
    }

    pub(super) fn running(&self) -> Result<gst::Element, CtlError> {
        self.switch().ok_or_else(|| {
            CtlError::Busy(format!(
                "channel {} is not running (Start it first)",
                self.id
            ))
        })
    }

    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::SwitchTo(id, reply) => {
                let r = self.input_index(&id).and_then(|i| {
                    let switch = self.running()?;
                    let pad = switch.static_pad(&format!("sink_{i}")).ok_or_else(|| {
                        CtlError::InvalidArgument(format!("input {id} has no switch pad"))
                    })?;
                    switch.set_property("active-pad", &pad);
                    info!(channel = %self.id, input = %id, "manual switch requested");
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::SetMode(mode, reply) => {
                let r = parse_mode(&mode).and_then(|mode| {
                    self.running().map(|s| {
                        s.set_property_from_str("mode", mode);
                        info!(channel = %self.id, mode = %mode, "mode set");
                    })
                });
                let _ = reply.send(r);
            }
            Command::RestartInput(id, reply) => {
                let r = self.input_index(&id).and_then(|i| {
                    self.running()?;
                    info!(channel = %self.id, input = %id, "restart requested");
                    self.restart_input(i);
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::RestartOutput(id, reply) => {
                let r = self.output_index(&id).and_then(|o| {
                    self.running()?;
                    info!(channel = %self.id, output = %id, "restart requested");
                    self.restart_output(o);
                    Ok(())
                });
                let _ = reply.send(r);
            }
            Command::Start(reply) => {
                let r = if self.core.is_some() {
                    Ok(())
                } else {
                    self.stopped = false;
                    self.start().map_err(|e| CtlError::Busy(format!("{e:#}")))
                };
                let _ = reply.send(r);
            }
            Command::Stop(reply) => {
                if self.drill.is_some() {
                    let _ = reply.send(Err(CtlError::Busy(format!(
                        "channel {}: a drill is running",
                        self.id
                    ))));
                    return;
                }
                if self.core.is_some() {
                    warn!(channel = %self.id, "stop requested: the channel goes off air");
                    if let Some(i) = self.active {
                        self.emit(ChannelEvent::InputSwitched {
                            from: self.inputs[i].id.clone(),
                            to: String::new(),
                            reason: "stopped".into(),
                        });
                    }
                    self.shutdown_now();
                }
                self.stopped = true;
                let _ = reply.send(Ok(()));
            }
            Command::Drill {
                kind,
                target,
                duration,
                reply,
            } => self.start_drill(&kind, &target, duration, reply),
            Command::SetSeat(seat) => self.set_seat(seat),
            Command::InsertCue {
                kind,
                duration,
                at,
                reply,
            } => {
                let r = super::parse_cue_kind(&kind).and_then(|k| self.insert_cue(k, duration, at));
                let _ = reply.send(r);
            }
        }
        self.update_status();
        self.publish_snapshot();
    }
}
