//! The object of one channel: properties from its snapshot, methods as
//! commands to its task, its events as signals.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use zbus::interface;
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};

use super::Error;
use crate::channel::{ChannelEvent, Command, DrillReport, Reply, Snapshot};

/// How long a command may take before the caller gets `Busy` (a channel
/// task that does not answer must not hang the caller).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The object of one channel.
pub struct ChannelObject {
    id: String,
    commands: mpsc::UnboundedSender<Command>,
    snapshot: watch::Receiver<Snapshot>,
}

impl ChannelObject {
    pub fn new(
        id: String,
        commands: mpsc::UnboundedSender<Command>,
        snapshot: watch::Receiver<Snapshot>,
    ) -> Self {
        ChannelObject {
            id,
            commands,
            snapshot,
        }
    }

    fn snap(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Command,
        timeout: Duration,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| Error::Busy(format!("channel {} is shutting down", self.id)))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r.map_err(Error::from),
            Ok(Err(_)) => Err(Error::Busy(format!("channel {} is shutting down", self.id))),
            Err(_) => Err(Error::Busy(format!(
                "channel {} did not answer within {} s",
                self.id,
                timeout.as_secs()
            ))),
        }
    }
}

pub use nonstop_api::model::{EncoderRow, InputRow, OutputRow};

pub fn input_rows(s: &Snapshot) -> Vec<InputRow> {
    s.inputs
        .iter()
        .map(|i| InputRow {
            id: i.id.clone(),
            uri: i.uri.clone(),
            state: i.state.clone(),
            alarms: i.alarms.clone(),
            last_seen: i.last_seen,
            restarts: i.restarts,
            return_holdoff_ms: i.return_holdoff_ms,
        })
        .collect()
}

pub fn output_rows(s: &Snapshot) -> Vec<OutputRow> {
    s.outputs
        .iter()
        .map(|o| OutputRow {
            id: o.id.clone(),
            uri: o.uri.clone(),
            state: o.state.clone(),
            bytes: o.bytes,
            restarts: o.restarts,
        })
        .collect()
}

pub fn encoder_rows(s: &Snapshot) -> Vec<EncoderRow> {
    s.encoders
        .iter()
        .map(|e| EncoderRow {
            id: e.id.clone(),
            backend: e.backend.clone(),
            state: e.state.clone(),
        })
        .collect()
}

fn report_dict(r: DrillReport) -> HashMap<String, OwnedValue> {
    let mut m = HashMap::new();
    let mut put = |k: &str, v: Value<'_>| {
        if let Ok(v) = OwnedValue::try_from(v) {
            m.insert(k.to_owned(), v);
        }
    };
    put("kind", Value::from(r.kind));
    put("target", Value::from(r.target));
    put("detected_ms", Value::from(r.detected_ms));
    put("switched_ms", Value::from(r.switched_ms));
    put("output_gap_ms", Value::from(r.output_gap_ms));
    put("returned_ms", Value::from(r.returned_ms));
    put("passed", Value::from(r.passed));
    put("reason", Value::from(r.reason));
    m
}

#[interface(name = "org.nonstop.Supervisor1.Channel")]
impl ChannelObject {
    #[zbus(property(emits_changed_signal = "const"))]
    fn id(&self) -> String {
        self.id.clone()
    }

    /// `starting`, `on-air`, `degraded`, `off-air` or `stopped`.
    #[zbus(property)]
    fn state(&self) -> String {
        self.snap().state
    }

    /// `auto` or `manual`.
    #[zbus(property)]
    fn mode(&self) -> String {
        self.snap().mode
    }

    /// The input on air; empty when none.
    #[zbus(property)]
    fn active_input(&self) -> String {
        self.snap().active_input
    }

    /// (id, uri, state, alarms, last seen µs, restarts, return hold-off ms),
    /// in priority order.
    #[zbus(property)]
    fn inputs(&self) -> Vec<InputRow> {
        input_rows(&self.snap())
    }

    /// (id, uri, state, bytes, restarts).
    #[zbus(property)]
    fn outputs(&self) -> Vec<OutputRow> {
        output_rows(&self.snap())
    }

    /// (id, backend, state) per encoder instance.
    #[zbus(property)]
    fn encoders(&self) -> Vec<EncoderRow> {
        encoder_rows(&self.snap())
    }

    /// Input changes since the channel started.
    #[zbus(property)]
    fn switches(&self) -> u64 {
        self.snap().switches
    }

    /// Puts `input` on air and the channel in manual mode.
    async fn switch_to(&self, input: String) -> Result<(), Error> {
        self.ask(|r| Command::SwitchTo(input, r), COMMAND_TIMEOUT)
            .await
    }

    /// `auto` or `manual`.
    async fn set_mode(&self, mode: String) -> Result<(), Error> {
        self.ask(|r| Command::SetMode(mode, r), COMMAND_TIMEOUT)
            .await
    }

    async fn restart_input(&self, id: String) -> Result<(), Error> {
        self.ask(|r| Command::RestartInput(id, r), COMMAND_TIMEOUT)
            .await
    }

    async fn restart_output(&self, id: String) -> Result<(), Error> {
        self.ask(|r| Command::RestartOutput(id, r), COMMAND_TIMEOUT)
            .await
    }

    async fn start(&self) -> Result<(), Error> {
        self.ask(Command::Start, COMMAND_TIMEOUT).await
    }

    async fn stop(&self) -> Result<(), Error> {
        self.ask(Command::Stop, COMMAND_TIMEOUT).await
    }

    /// Simulates a failure through the real code path for `duration_ms`,
    /// restores it, and reports. `kind`: input-stall, input-black,
    /// input-silence (target: an input), encoder-fail (target: an encoder
    /// id, empty: the first), output-fail (target: an output).
    async fn drill(
        &self,
        kind: String,
        target: String,
        duration_ms: u64,
    ) -> Result<HashMap<String, OwnedValue>, Error> {
        let duration = Duration::from_millis(duration_ms);
        // The drill, the wait for the return, and some slack.
        let limit = duration + Duration::from_secs(120);
        self.ask(
            |reply| Command::Drill {
                kind,
                target,
                duration,
                reply,
            },
            limit,
        )
        .await
        .map(report_dict)
    }

    #[zbus(signal)]
    async fn input_switched(
        emitter: &SignalEmitter<'_>,
        from: &str,
        to: &str,
        reason: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn alarm(
        emitter: &SignalEmitter<'_>,
        target: &str,
        kind: &str,
        raised: bool,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn output_state_changed(
        emitter: &SignalEmitter<'_>,
        id: &str,
        state: &str,
    ) -> zbus::Result<()>;
}

/// Counters (last seen, bytes) change all the time: their properties are
/// announced at most this often unless something else in them changed.
const COUNTER_PERIOD: Duration = Duration::from_secs(1);

fn without_counters(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    s.counters = Default::default();
    s.recent = Vec::new();
    for i in &mut s.inputs {
        i.last_seen = 0;
    }
    for o in &mut s.outputs {
        o.bytes = 0;
    }
    s
}

/// Forwards a channel's events as signals and its snapshot changes as
/// `PropertiesChanged`, until the channel goes away.
pub async fn forward(
    iface: InterfaceRef<ChannelObject>,
    mut snapshot: watch::Receiver<Snapshot>,
    mut events: broadcast::Receiver<ChannelEvent>,
) {
    let mut last = snapshot.borrow().clone();
    let mut counters_sent = tokio::time::Instant::now();
    loop {
        tokio::select! {
            ev = events.recv() => {
                let em = iface.signal_emitter();
                let r = match ev {
                    Ok(ChannelEvent::InputSwitched { from, to, reason }) => {
                        ChannelObject::input_switched(em, &from, &to, &reason).await
                    }
                    Ok(ChannelEvent::Alarm { target, kind, raised }) => {
                        ChannelObject::alarm(em, &target, &kind, raised).await
                    }
                    Ok(ChannelEvent::OutputStateChanged { id, state }) => {
                        ChannelObject::output_state_changed(em, &id, &state).await
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if let Err(e) = r {
                    tracing::debug!("D-Bus signal not sent: {e}");
                }
            }
            r = snapshot.changed() => {
                if r.is_err() {
                    return;
                }
                let now = snapshot.borrow_and_update().clone();
                let shape_changed = without_counters(&now) != without_counters(&last);
                let counters_due = counters_sent.elapsed() >= COUNTER_PERIOD;
                let obj = iface.get().await;
                let em = iface.signal_emitter();
                if now.state != last.state {
                    let _ = obj.state_changed(em).await;
                }
                if now.mode != last.mode {
                    let _ = obj.mode_changed(em).await;
                }
                if now.active_input != last.active_input {
                    let _ = obj.active_input_changed(em).await;
                }
                if now.switches != last.switches {
                    let _ = obj.switches_changed(em).await;
                }
                if now.encoders != last.encoders {
                    let _ = obj.encoders_changed(em).await;
                }
                let inputs_shape = without_counters(&now).inputs != without_counters(&last).inputs;
                let outputs_shape = without_counters(&now).outputs != without_counters(&last).outputs;
                let mut sent = false;
                if now.inputs != last.inputs && (inputs_shape || counters_due) {
                    let _ = obj.inputs_changed(em).await;
                    sent = true;
                }
                if now.outputs != last.outputs && (outputs_shape || counters_due) {
                    let _ = obj.outputs_changed(em).await;
                    sent = true;
                }
                if sent && !shape_changed {
                    counters_sent = tokio::time::Instant::now();
                }
                // What was not announced stays "last" until it is.
                if sent || shape_changed {
                    last = now;
                } else {
                    last.state = now.state;
                    last.mode = now.mode;
                    last.active_input = now.active_input;
                    last.switches = now.switches;
                    last.encoders = now.encoders;
                }
            }
        }
    }
}
