//! The object of one channel: properties from its snapshot, methods as
//! commands to its task, its events as signals.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use zbus::interface;
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::zvariant::{OwnedValue, Value};

use super::Error;
use crate::channel::{ChannelEvent, Command, DrillReport, Reply, Seat, Snapshot};

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

use nonstop_api::model::{EncoderRow, InputRow, LinkRow, OutputRow};

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
        self.snap().state.name().to_owned()
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
        self.snap().inputs
    }

    /// (id, uri, state, bytes, restarts).
    #[zbus(property)]
    fn outputs(&self) -> Vec<OutputRow> {
        self.snap().outputs
    }

    /// (id, backend, state) per encoder instance.
    #[zbus(property)]
    fn encoders(&self) -> Vec<EncoderRow> {
        self.snap().encoders
    }

    /// (kind, id, rtt µs, bandwidth kbit/s, rate kbit/s, packets, lost,
    /// retransmitted, dropped, loss over 5 s ppm, alarms) per SRT link
    /// with a connection now.
    #[zbus(property)]
    fn links(&self) -> Vec<LinkRow> {
        self.snap().links
    }

    /// Input changes since the channel started.
    #[zbus(property)]
    fn switches(&self) -> u64 {
        self.snap().switches
    }

    /// `active`, `standby` or `off` on this box; empty without `[fleet]`.
    #[zbus(property)]
    fn role(&self) -> String {
        self.snap()
            .fleet
            .map(|s| s.role.name().to_owned())
            .unwrap_or_default()
    }

    /// The node leading the channel; empty while nobody does, or without
    /// `[fleet]`.
    #[zbus(property)]
    fn leader(&self) -> String {
        self.snap().fleet.map(|s| s.leader).unwrap_or_default()
    }

    /// The fencing token this box leads the channel under (the leader
    /// key's revision in etcd); 0 when it does not lead it.
    #[zbus(property)]
    fn fencing_token(&self) -> i64 {
        self.snap().fleet.map_or(0, |s| s.token)
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

    /// Places an SCTE-35 cue `preroll_ms` from now: `kind` splice-out
    /// (with a break of `duration_ms`, 0: open-ended) or splice-in
    /// (`duration_ms` 0). Returns its splice_event_id.
    async fn insert_cue(
        &self,
        kind: String,
        duration_ms: u64,
        preroll_ms: u64,
    ) -> Result<u32, Error> {
        let at = crate::channel::CueAt::In(Duration::from_millis(preroll_ms));
        let duration = Duration::from_millis(duration_ms);
        self.ask(
            |reply| Command::InsertCue {
                kind,
                duration,
                at,
                reply,
            },
            COMMAND_TIMEOUT,
        )
        .await
    }

    /// Like InsertCue, the splice at `utc` (RFC 3339, e.g.
    /// 2026-12-07T20:00:00Z).
    async fn schedule_cue(
        &self,
        kind: String,
        duration_ms: u64,
        utc: String,
    ) -> Result<u32, Error> {
        let t = humantime::parse_rfc3339_weak(&utc).map_err(|e| {
            Error::InvalidArgument(format!("\"{utc}\" is not an RFC 3339 UTC time ({e})"))
        })?;
        let duration = Duration::from_millis(duration_ms);
        self.ask(
            |reply| Command::InsertCue {
                kind,
                duration,
                at: crate::channel::CueAt::Utc(t),
                reply,
            },
            COMMAND_TIMEOUT,
        )
        .await
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

    /// The channel's seat in the fleet changed: role, leader, token.
    /// (`RoleChanged` on the bus; `role_changed` is the `Role` property's
    /// `PropertiesChanged`.)
    #[zbus(signal, name = "RoleChanged")]
    async fn seat_changed(
        emitter: &SignalEmitter<'_>,
        role: &str,
        leader: &str,
        token: i64,
    ) -> zbus::Result<()>;
}

/// Counters (last seen, bytes) change all the time: their properties are
/// announced at most this often unless something else in them changed.
const COUNTER_PERIOD: Duration = Duration::from_secs(1);

/// The channel object's properties that change, in one table: `forward`
/// announces each from here (systemd's `send_changed_signal` walks its
/// vtable the same way), and a test holds the table to the interface's
/// introspection, so a new property cannot miss its `PropertiesChanged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    State,
    Mode,
    ActiveInput,
    Role,
    Leader,
    FencingToken,
    Switches,
    Encoders,
    Inputs,
    Outputs,
    Links,
}

impl Prop {
    /// In the order their signals go out.
    const ALL: [Prop; 11] = [
        Prop::State,
        Prop::Mode,
        Prop::ActiveInput,
        Prop::Role,
        Prop::Leader,
        Prop::FencingToken,
        Prop::Switches,
        Prop::Encoders,
        Prop::Inputs,
        Prop::Outputs,
        Prop::Links,
    ];

    #[cfg(test)]
    fn name(self) -> &'static str {
        match self {
            Prop::State => "State",
            Prop::Mode => "Mode",
            Prop::ActiveInput => "ActiveInput",
            Prop::Role => "Role",
            Prop::Leader => "Leader",
            Prop::FencingToken => "FencingToken",
            Prop::Switches => "Switches",
            Prop::Encoders => "Encoders",
            Prop::Inputs => "Inputs",
            Prop::Outputs => "Outputs",
            Prop::Links => "Links",
        }
    }

    /// Its value differs between two snapshots.
    fn differs(self, a: &Snapshot, b: &Snapshot) -> bool {
        match self {
            Prop::State => a.state != b.state,
            Prop::Mode => a.mode != b.mode,
            Prop::ActiveInput => a.active_input != b.active_input,
            // As the properties show them ("" and 0 without a seat).
            Prop::Role => seat(a).map(|s| s.role) != seat(b).map(|s| s.role),
            Prop::Leader => leader(a) != leader(b),
            Prop::FencingToken => token(a) != token(b),
            Prop::Switches => a.switches != b.switches,
            Prop::Encoders => a.encoders != b.encoders,
            Prop::Inputs => a.inputs != b.inputs,
            Prop::Outputs => a.outputs != b.outputs,
            Prop::Links => a.links != b.links,
        }
    }

    /// It carries counters, announced alone at most every
    /// [`COUNTER_PERIOD`].
    fn has_counters(self) -> bool {
        matches!(self, Prop::Inputs | Prop::Outputs | Prop::Links)
    }

    /// Sends its `PropertiesChanged` (with the value its getter reads).
    async fn announce(self, obj: &ChannelObject, em: &SignalEmitter<'_>) -> zbus::Result<()> {
        match self {
            Prop::State => obj.state_changed(em).await,
            Prop::Mode => obj.mode_changed(em).await,
            Prop::ActiveInput => obj.active_input_changed(em).await,
            Prop::Role => obj.role_changed(em).await,
            Prop::Leader => obj.leader_changed(em).await,
            Prop::FencingToken => obj.fencing_token_changed(em).await,
            Prop::Switches => obj.switches_changed(em).await,
            Prop::Encoders => obj.encoders_changed(em).await,
            Prop::Inputs => obj.inputs_changed(em).await,
            Prop::Outputs => obj.outputs_changed(em).await,
            Prop::Links => obj.links_changed(em).await,
        }
    }
}

fn seat(s: &Snapshot) -> Option<&Seat> {
    s.fleet.as_ref()
}

fn leader(s: &Snapshot) -> &str {
    seat(s).map_or("", |s| s.leader.as_str())
}

fn token(s: &Snapshot) -> i64 {
    seat(s).map_or(0, |s| s.token)
}

fn without_counters(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    s.counters = Default::default();
    s.recent = Vec::new();
    // Not a property: what systemd's STATUS= says.
    s.status = Default::default();
    for i in &mut s.inputs {
        i.last_seen = 0;
    }
    for o in &mut s.outputs {
        o.bytes = 0;
    }
    // A link's figures move every second; its alarms and its presence
    // are the shape.
    for l in &mut s.links {
        *l = nonstop_api::model::LinkRow {
            kind: std::mem::take(&mut l.kind),
            id: std::mem::take(&mut l.id),
            alarms: std::mem::take(&mut l.alarms),
            ..Default::default()
        };
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
                let mut sent = false;
                let seat_changed = now.fleet.is_some() && now.fleet != last.fleet;
                for p in Prop::ALL {
                    if !p.differs(&last, &now) {
                        continue;
                    }
                    if p.has_counters() {
                        let shape = p.differs(&without_counters(&last), &without_counters(&now));
                        if !shape && !counters_due {
                            continue;
                        }
                        sent = true;
                    }
                    let _ = p.announce(&obj, em).await;
                }
                if let (true, Some(s)) = (seat_changed, &now.fleet) {
                    let r = ChannelObject::seat_changed(em, s.role.name(), &s.leader, s.token).await;
                    if let Err(e) = r {
                        tracing::debug!("D-Bus signal not sent: {e}");
                    }
                }
                if sent && !shape_changed {
                    counters_sent = tokio::time::Instant::now();
                }
                if sent || shape_changed {
                    last = now;
                } else {
                    // Counters not announced stay "last" until they are.
                    let inputs = std::mem::take(&mut last.inputs);
                    let outputs = std::mem::take(&mut last.outputs);
                    last = now;
                    last.inputs = inputs;
                    last.outputs = outputs;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::object_server::Interface;

    /// The properties the interface declares as changing (not `const`),
    /// read from its introspection.
    fn changing_properties() -> Vec<String> {
        let (tx, _rx) = mpsc::unbounded_channel();
        let (_keep, snapshot) = watch::channel(Snapshot::default());
        let obj = ChannelObject::new("news".into(), tx, snapshot);
        let mut xml = String::new();
        obj.introspect_to_writer(&mut xml, 0);
        xml.split("<property ")
            .skip(1)
            .filter(|p| !p.contains("EmitsChangedSignal\" value=\"const\""))
            .filter_map(|p| Some(p.split("name=\"").nth(1)?.split('"').next()?.to_owned()))
            .collect()
    }

    #[test]
    fn every_changing_property_is_announced_from_the_table() {
        let mut declared = changing_properties();
        declared.sort();
        let mut table: Vec<String> = Prop::ALL.iter().map(|p| p.name().to_owned()).collect();
        table.sort();
        assert_eq!(declared, table);
        // Id is the one constant property.
        assert!(!declared.contains(&"Id".to_owned()));
    }

    #[test]
    fn each_property_notices_a_change_of_its_own_field_only() {
        let base = Snapshot::default();
        let mut changed = Vec::new();
        let mut s = base.clone();
        s.state = crate::channel::ChannelState::OnAir;
        changed.push((Prop::State, s));
        let mut s = base.clone();
        s.mode = "manual".into();
        changed.push((Prop::Mode, s));
        let mut s = base.clone();
        s.active_input = "backup".into();
        changed.push((Prop::ActiveInput, s));
        let mut s = base.clone();
        s.switches = 1;
        changed.push((Prop::Switches, s));
        let fleet = Snapshot {
            fleet: Some(Seat::default()),
            ..base.clone()
        };
        let mut s = fleet.clone();
        s.fleet = Some(Seat {
            role: crate::channel::Role::Active,
            ..Seat::default()
        });
        changed.push((Prop::Role, s));
        let mut s = fleet.clone();
        s.fleet = Some(Seat {
            leader: "box-b".into(),
            ..Seat::default()
        });
        changed.push((Prop::Leader, s));
        let mut s = fleet.clone();
        s.fleet = Some(Seat {
            token: 7,
            ..Seat::default()
        });
        changed.push((Prop::FencingToken, s));
        let mut s = base.clone();
        s.encoders = vec![Default::default()];
        changed.push((Prop::Encoders, s));
        let mut s = base.clone();
        s.inputs = vec![Default::default()];
        changed.push((Prop::Inputs, s));
        let mut s = base.clone();
        s.outputs = vec![Default::default()];
        changed.push((Prop::Outputs, s));
        let mut s = base.clone();
        s.links = vec![Default::default()];
        changed.push((Prop::Links, s));
        assert_eq!(changed.len(), Prop::ALL.len());
        for (p, s) in &changed {
            // A seat's field changes against a seat, not against none.
            let from = if s.fleet.is_some() { &fleet } else { &base };
            for q in Prop::ALL {
                assert_eq!(q.differs(from, s), q == *p, "{q:?} on a change of {p:?}");
            }
        }
        // Joining the fleet (no seat → the default one) changes the
        // role, from "" to "off", and nothing else ("" and 0 stay).
        let joined: Vec<Prop> = Prop::ALL
            .into_iter()
            .filter(|p| p.differs(&base, &fleet))
            .collect();
        assert_eq!(joined, [Prop::Role]);
    }

    #[test]
    fn the_seat_as_properties() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let (keep, snapshot) = watch::channel(Snapshot::default());
        let obj = ChannelObject::new("news".into(), tx, snapshot);
        // Without a fleet.
        assert_eq!(
            (obj.role(), obj.leader(), obj.fencing_token()),
            ("".into(), "".into(), 0)
        );
        keep.send_modify(|s| {
            s.fleet = Some(Seat::new(crate::channel::Role::Standby, "box-b".into(), 42))
        });
        assert_eq!(
            (obj.role(), obj.leader(), obj.fencing_token()),
            ("standby".into(), "box-b".into(), 42)
        );
        let mut xml = String::new();
        obj.introspect_to_writer(&mut xml, 0);
        assert!(xml.contains(r#"name="FencingToken" type="x""#), "{xml}");
        assert!(xml.contains(r#"<signal name="RoleChanged">"#), "{xml}");
    }

    #[test]
    fn counters_alone_are_not_a_change_of_shape() {
        let a = Snapshot {
            inputs: vec![Default::default()],
            outputs: vec![Default::default()],
            links: vec![Default::default()],
            ..Default::default()
        };
        let mut b = a.clone();
        b.inputs[0].last_seen = 5;
        b.outputs[0].bytes = 9;
        b.links[0].rtt_us = 41_000;
        b.links[0].packets = 1200;
        b.status.inputs_live = 1;
        assert!(Prop::Inputs.differs(&a, &b) && Prop::Outputs.differs(&a, &b));
        assert!(Prop::Links.differs(&a, &b));
        assert_eq!(without_counters(&a), without_counters(&b));
        // A link's alarm is a change of shape, announced at once.
        b.links[0].alarms = vec!["rtt".into()];
        assert_ne!(without_counters(&a), without_counters(&b));
        assert!(Prop::ALL
            .iter()
            .all(|p| p.has_counters() == matches!(p, Prop::Inputs | Prop::Outputs | Prop::Links)));
    }
}
