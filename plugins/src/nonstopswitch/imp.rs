//! The `nonstopswitch` element: a frame synchronizer with priority failover.
//!
//! Sink pads queue their input. Every output slot publishes the inputs'
//! health to the switch group, applies the group's decision, and pushes one
//! frame (or audio chunk) with the slot's timestamp (`output`). While the
//! input on air delivers in time, its own streaming thread sends the slots;
//! a task on the src pad sends the ones it does not, paced by the pipeline
//! clock (`pacing`).
//!
//! Lock order: `settings` is only ever held alone (copied out); `push` is
//! taken before `state` (with `state` held, `push` is only tried, never
//! waited for); `state` may be held while taking the group's lock, never
//! the other way round. Nothing is pushed, posted or notified while `state`
//! is held.

mod hold;
mod output;
mod pacing;
mod properties;

use pacing::grace as grace_of;
use properties::Settings;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::group::{Arrival, Grid, Group, Local, Published};
use super::media::{Format, InputQueue};
use super::pacer::Pacer;
use super::sinkpad::index_of;
use super::{NonstopSwitchSinkPad, PadState};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nonstopswitch",
        gst::DebugColorFlags::empty(),
        Some("nonstop priority input switch"),
    )
});

pub const MSG_SWITCH: &str = "nonstop-switch";
pub const MSG_INPUT: &str = "nonstop-input";

static MEMBER_IDS: AtomicUsize = AtomicUsize::new(1);

struct Input {
    pad: NonstopSwitchSinkPad,
    index: u32,
    caps: Option<gst::Caps>,
    queue: Option<InputQueue>,
    local: Local,
    /// Data came while no clock ran (PAUSED): timed at the first slot.
    seen_unclocked: bool,
    flushing: bool,
    /// Flagged unusable by a `nonstop-health` event since then.
    flagged: Option<ClockTime>,
    /// Duration of the last buffer: the gap expected before the next one.
    last_duration: Option<ClockTime>,
}

impl Input {
    fn new(pad: NonstopSwitchSinkPad, index: u32) -> Self {
        Self {
            pad,
            index,
            caps: None,
            queue: None,
            local: Local::Waiting,
            seen_unclocked: false,
            flushing: false,
            flagged: None,
            last_duration: None,
        }
    }
}

struct Timeline {
    grid: Grid,
    next: u64,
}

#[derive(Default)]
struct State {
    inputs: Vec<Input>,
    format: Option<Format>,
    filler: Option<gst::Buffer>,
    caps_pending: bool,
    stream_started: bool,
    timeline: Option<Timeline>,
    active: Option<u32>,
    /// Name of the pad on air, kept so a released pad can still be named.
    active_name: Option<String>,
    /// Group log position applied; `join` is the group's choice at start.
    applied: u64,
    join: Option<Option<u32>>,
    last_frame: Option<gst::Buffer>,
    /// Audio: the next chunk fades in from this input (None: silence).
    fade_from: Option<Option<u32>>,
    lost_since: Option<ClockTime>,
    playing: bool,
    flushing: bool,
    clock_id: Option<gst::SingleShotClockId>,
    /// The pipeline clock and base time while PLAYING.
    clock: Option<gst::Clock>,
    base: ClockTime,
    /// The src task's alarm, on the system clock only: then the input on
    /// air may send slots itself (see `pacing`).
    pacer: Option<Arc<Pacer>>,
    /// When the last push of a slot returned.
    pushed_at: ClockTime,
    /// How long after its slot's start the last push returned: when the
    /// next one is expected back (a synchronising sink holds each push).
    push_lag: ClockTime,
    /// Where the pacer is set (running time), `None` if unknown (it rang
    /// or was woken): moving it costs a system call, so it is left alone
    /// when it already rings at the right time.
    armed: Option<ClockTime>,
    /// Downstream refused a push or EOS went out: no more slots.
    output_stopped: bool,
    eos_sent: bool,
    /// EOS was sent to the element itself (gst-launch-1.0 -e, shutdown).
    eos_requested: bool,
    discont: bool,
    switches: u64,
    frames_out: u64,
    frames_repeated: u64,
    frames_black: u64,
    /// Scratch for the health published at each slot, kept so that a slot
    /// allocates nothing.
    published: Vec<(u32, Published)>,
    /// Input threads held until the next slot (see `hold`).
    holders: u32,
}

impl State {
    fn input(&mut self, pad: &NonstopSwitchSinkPad) -> Option<&mut Input> {
        self.inputs.iter_mut().find(|i| &i.pad == pad)
    }

    fn pad_name(&self, index: Option<u32>) -> Option<String> {
        let i = index?;
        self.inputs
            .iter()
            .find(|x| x.index == i)
            .map(|x| x.pad.name().to_string())
    }
}

pub struct NonstopSwitch {
    src_pad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Wakes the src task waiting for the first data.
    cond: Condvar,
    /// Wakes the inputs held until the next slot (see `hold`).
    hold: Condvar,
    /// Held by whichever thread builds and pushes a slot (see `pacing`).
    push: Mutex<()>,
    group: Mutex<Arc<Group>>,
    group_name: Mutex<String>,
    member: usize,
}

fn input_message(
    obj: &super::NonstopSwitch,
    pad: &str,
    state: PadState,
    at: Option<ClockTime>,
) -> gst::Message {
    let s = gst::Structure::builder(MSG_INPUT)
        .field("pad", pad)
        .field("state", state.nick())
        .field("running-time", at.map_or(u64::MAX, ClockTime::nseconds))
        .build();
    gst::message::Element::builder(s).src(obj).build()
}

impl NonstopSwitch {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn group(&self) -> Arc<Group> {
        self.group.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Current running time, only meaningful while PLAYING.
    fn now(&self, st: &State) -> Option<ClockTime> {
        if !st.playing {
            return None;
        }
        st.clock.as_ref()?.time().checked_sub(st.base)
    }

    fn sink_chain(
        &self,
        pad: &NonstopSwitchSinkPad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings();
        let Settings {
            latency,
            timeout,
            clean_gap,
            ..
        } = settings;
        let mut st = self.lock_state();
        let now = self.now(&st);
        let slot = st.format.as_ref().map(Format::slot_duration);
        let waiting_for_data = st.timeline.is_none();
        let active = st.active;
        let Some(input) = st.input(pad) else {
            return Err(gst::FlowError::Flushing);
        };
        if input.flushing {
            return Err(gst::FlowError::Flushing);
        }
        let (Some(queue), Some(slot)) = (input.queue.as_mut(), slot) else {
            drop(st);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("{} received data before caps", pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let expected = input.last_duration.unwrap_or(slot);
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let (index, duration) = (input.index, buffer.duration());
        input.last_duration = duration;
        queue.push(buffer);
        // Bound memory and latency even when nobody consumes (not PLAYING,
        // or an input delivering faster than real time).
        let prefill = queue.prefill(slot, latency);
        if queue.level() > prefill * 2 {
            let dropped = queue.trim(prefill);
            gst::log!(CAT, obj = pad, "queue over limit, dropped {dropped}");
        }
        let mut interruption = None;
        input.local = match now {
            Some(now) => {
                let (local, gap) = input.local.on_buffer(
                    now,
                    &Arrival {
                        timeout,
                        expected,
                        clean_gap,
                        discont,
                    },
                );
                // Only an input off air waits on its clean window: say so,
                // it is why a backup stays on air.
                if active != Some(input.index) {
                    interruption = gap;
                }
                local
            }
            None => match input.local {
                local @ Local::Receiving { .. } => local,
                _ => {
                    input.seen_unclocked = true;
                    Local::fresh(ClockTime::ZERO)
                }
            },
        };
        let flagged = input.flagged.is_some();
        let imp = pad.imp();
        imp.count_frame(now);
        let changed = !flagged && imp.set_pad_state(PadState::Healthy);

        // Said once `state` is released, before any slot this buffer sends.
        let announce = || {
            if waiting_for_data {
                self.cond.notify_all();
            }
            if changed {
                gst::debug!(CAT, obj = pad, "input healthy");
                let _ = self.obj().post_message(input_message(
                    &self.obj(),
                    &pad.name(),
                    PadState::Healthy,
                    now,
                ));
            }
            if let Some(gap) = interruption {
                gst::debug!(
                    CAT,
                    obj = pad,
                    "interrupted for {gap}: clean window restarts"
                );
                let s = gst::Structure::builder(MSG_INPUT)
                    .field("pad", pad.name().as_str())
                    .field("state", "interrupted")
                    .field("running-time", now.map_or(u64::MAX, ClockTime::nseconds))
                    .field("gap", gap.nseconds())
                    .build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
            }
        };
        let ticket = Self::hold_ticket(&st, &settings, index, duration, slot);
        self.chain_output(pad, st, &settings, announce);
        if let Some(ticket) = ticket {
            self.hold(index, ticket, slot);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &NonstopSwitchSinkPad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => self.set_input_caps(pad, c.caps_owned()),
            EventView::Eos(_) => {
                let mut st = self.lock_state();
                let now = self.now(&st);
                if let Some(input) = st.input(pad) {
                    input.local = Local::Eos;
                }
                let changed = pad.imp().set_pad_state(PadState::Eos);
                drop(st);
                self.cond.notify_all();
                if changed {
                    gst::info!(CAT, obj = pad, "input reached EOS: lost");
                    let _ = self.obj().post_message(input_message(
                        &self.obj(),
                        &pad.name(),
                        PadState::Eos,
                        now,
                    ));
                }
                true
            }
            EventView::CustomDownstreamSticky(_) => {
                if let Some(healthy) = crate::health::parse_health(&event) {
                    self.set_flagged(pad, !healthy);
                }
                true
            }
            EventView::FlushStart(_) => {
                let mut st = self.lock_state();
                if let Some(input) = st.input(pad) {
                    input.flushing = true;
                    if let Some(q) = input.queue.as_mut() {
                        q.clear();
                    }
                }
                true
            }
            EventView::FlushStop(_) => {
                let mut st = self.lock_state();
                if let Some(input) = st.input(pad) {
                    input.flushing = false;
                    if input.local == Local::Eos {
                        input.local = Local::Waiting;
                        pad.imp().set_pad_state(PadState::Waiting);
                    }
                }
                true
            }
            // Inputs are re-timed and merged into one stream: their
            // stream-start, segment, tags and gaps stay here.
            _ => true,
        }
    }

    /// An element upstream says the input is (un)usable although data flows.
    fn set_flagged(&self, pad: &NonstopSwitchSinkPad, unhealthy: bool) {
        let mut st = self.lock_state();
        let now = self.now(&st).unwrap_or(ClockTime::ZERO);
        let Some(input) = st.input(pad) else {
            return;
        };
        gst::info!(
            CAT,
            obj = pad,
            "input flagged {}",
            if unhealthy { "unhealthy" } else { "healthy" }
        );
        if unhealthy {
            input.flagged.get_or_insert(now);
        } else if input.flagged.take().is_some() {
            // Usable again from now: return-after counts from here.
            input.local = input.local.restarted(now);
        }
    }

    fn set_input_caps(&self, pad: &NonstopSwitchSinkPad, caps: gst::Caps) -> bool {
        let format = match Format::from_caps(&caps) {
            Ok(f) => f,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Cannot accept caps on {}: {msg}", pad.name()),
                    details: gst::Structure::builder("nonstop-caps-error")
                        .field("pad", pad.name().as_str())
                        .field("caps", caps.to_string())
                        .build()
                );
                return false;
            }
        };

        let mut st = self.lock_state();
        let conflict = st
            .inputs
            .iter()
            .filter(|i| &i.pad != pad && i.local != Local::Eos)
            .find_map(|i| {
                let c = i.caps.as_ref()?;
                let diff = Format::from_caps(c).ok()?.differences(&format);
                (!diff.is_empty()).then(|| (i.pad.name(), c.clone(), diff.join(", ")))
            });
        if let Some((other, other_caps, diff)) = conflict {
            drop(st);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Caps mismatch on {}: it offers {caps} but {other} carries {other_caps};                      they differ in {diff}. Every input of nonstopswitch must have the same                      format, size, framerate and pixel aspect ratio (audio: format, rate,                      channels): normalize each input (videoconvert ! videoscale ! videorate !                      capsfilter, or audioconvert ! audioresample ! capsfilter)",
                    pad.name()
                ),
                details: gst::Structure::builder("nonstop-caps-error")
                    .field("pad", pad.name().as_str())
                    .field("caps", caps.to_string())
                    .field("other-pad", other.as_str())
                    .field("other-caps", other_caps.to_string())
                    .build()
            );
            return false;
        }

        let unchanged = st
            .format
            .as_ref()
            .is_some_and(|f| f.differences(&format).is_empty());
        let now = self.now(&st);
        let Some(input) = st.input(pad) else {
            return false;
        };
        if input.caps.as_ref().is_some_and(|c| *c == caps) && input.queue.is_some() {
            return true;
        }
        let had_caps = input.caps.is_some();
        input.caps = Some(caps.clone());
        input.queue = Some(format.new_queue());
        if let (true, Local::Receiving { last_seen, .. }) = (had_caps, input.local) {
            // New caps are an interruption: the clean window starts over.
            input.local = input.local.restarted(now.unwrap_or(last_seen));
        }
        if unchanged {
            return true;
        }

        gst::info!(CAT, imp = self, "output caps {caps}");
        let old_rate = st.format.as_ref().map(Format::grid_rate);
        st.filler = match format.filler() {
            Ok(f) => Some(f),
            Err(e) => {
                gst::warning!(CAT, imp = self, "{e}; repeating the last frame instead");
                None
            }
        };
        st.last_frame = None;
        st.caps_pending = true;
        // A new rate re-anchors the slot grid at the next slot.
        if old_rate.is_some_and(|r| r != format.grid_rate()) {
            if let Some(tl) = st.timeline.as_ref() {
                let next = tl.grid.slot(tl.next);
                let (num, den) = format.grid_rate();
                let (grid, k, _, _) = self.group().start(self.member, next, num, den);
                st.timeline = Some(Timeline { grid, next: k });
            }
        }
        st.format = Some(format);
        true
    }

    fn sink_query(&self, pad: &NonstopSwitchSinkPad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let fixed = self.lock_state().format.as_ref().map(|f| f.caps.clone());
                let caps = match fixed {
                    Some(c) => c,
                    None => {
                        let templ = pad.pad_template_caps();
                        let peer = self.src_pad.peer_query_caps(Some(&templ));
                        peer.intersect(&templ)
                    }
                };
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::AcceptCaps(q) => {
                // Everything is let through to the caps event, which checks
                // it and can say exactly what is wrong; the caps query above
                // already steers negotiation to what works.
                q.set_result(true);
                true
            }
            QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Latency(q) => {
                let mut upstream = ClockTime::ZERO;
                for sink in self.obj().sink_pads() {
                    let mut uq = gst::query::Latency::new();
                    if sink.peer_query(&mut uq) {
                        let (_live, min, _max) = uq.result();
                        upstream = upstream.max(min);
                    }
                }
                let slot = self
                    .lock_state()
                    .format
                    .as_ref()
                    .map_or(ClockTime::ZERO, Format::slot_duration);
                let ours = slot + self.settings().latency;
                gst::debug!(
                    CAT,
                    imp = self,
                    "latency: upstream {upstream} + ours {ours}"
                );
                q.set(true, upstream + ours, ClockTime::NONE);
                true
            }
            QueryViewMut::Caps(q) => {
                let fixed = self.lock_state().format.as_ref().map(|f| f.caps.clone());
                let caps = fixed.unwrap_or_else(|| pad.pad_template_caps());
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Reconfigure(_) => {
                self.lock_state().caps_pending = true;
                for sink in self.obj().sink_pads() {
                    sink.push_event(event.clone());
                }
                true
            }
            // A live switch cannot seek, and QoS must not throttle the inputs.
            EventView::Seek(_) => false,
            EventView::Qos(_) => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn src_activatemode(&self, pad: &gst::Pad, active: bool) -> Result<(), gst::LoggableError> {
        if active {
            self.lock_state().flushing = false;
            return Ok(());
        }
        {
            let mut st = self.lock_state();
            st.flushing = true;
            if let Some(id) = st.clock_id.take() {
                id.unschedule();
            }
            Self::wake_task(&mut st);
        }
        self.cond.notify_all();
        pad.stop_task()
            .map_err(|e| gst::loggable_error!(CAT, "cannot stop task: {e}"))
    }

    fn reset(&self) {
        let mut st = self.lock_state();
        for input in st.inputs.iter_mut() {
            input.local = Local::Waiting;
            input.seen_unclocked = false;
            input.flagged = None;
            if let Some(q) = input.queue.as_mut() {
                q.clear();
            }
            input.pad.imp().set_pad_state(PadState::Waiting);
        }
        st.timeline = None;
        st.active = None;
        st.active_name = None;
        st.join = None;
        st.last_frame = None;
        st.fade_from = None;
        st.lost_since = None;
        st.stream_started = false;
        st.eos_sent = false;
        st.eos_requested = false;
        st.output_stopped = false;
        st.pushed_at = ClockTime::ZERO;
        st.push_lag = ClockTime::ZERO;
        drop(st);
        self.group().stop(self.member);
    }

    /// The `return-holdoff` of input `index`: its flap-damped hold-off as
    /// of the last decision, `return-after` before any.
    pub(super) fn return_holdoff(&self, index: u32) -> ClockTime {
        self.group()
            .holdoff(index)
            .unwrap_or_else(|| self.settings().return_after)
    }

    fn set_group(&self, name: &str) {
        let new = if name.is_empty() {
            Group::private()
        } else {
            Group::named(name)
        };
        let mut g = self.group.lock().unwrap_or_else(|e| e.into_inner());
        g.leave(self.member);
        new.join(self.member);
        *g = new;
        *self.group_name.lock().unwrap_or_else(|e| e.into_inner()) = name.to_owned();
    }
}

#[glib::object_subclass]
impl ObjectSubclass for NonstopSwitch {
    const NAME: &'static str = "GstNonstopSwitch";
    type Type = super::NonstopSwitch;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("src").expect("src template");
        let src_pad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || false,
                    |s| s.src_query(pad, query),
                )
            })
            .event_function(|pad, parent, event| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || false,
                    |s| s.src_event(pad, event),
                )
            })
            .activatemode_function(|pad, parent, _mode, active| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in activate")),
                    |s| s.src_activatemode(pad, active),
                )
            })
            .flags(gst::PadFlags::FIXED_CAPS)
            .build();
        let member = MEMBER_IDS.fetch_add(1, Ordering::Relaxed);
        let group = Group::private();
        group.join(member);
        Self {
            src_pad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State {
                flushing: true,
                discont: true,
                ..Default::default()
            }),
            cond: Condvar::new(),
            hold: Condvar::new(),
            push: Mutex::new(()),
            group: Mutex::new(group),
            group_name: Mutex::new(String::new()),
            member,
        }
    }
}

impl ObjectImpl for NonstopSwitch {
    fn properties() -> &'static [glib::ParamSpec] {
        Self::property_specs()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.set_property_value(value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.property_value(pspec)
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.src_pad).expect("src pad");
        // The switch makes its own output timeline: bins treat it as a
        // source, so an EOS sent to the pipeline reaches it (send_event).
        obj.set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn dispose(&self) {
        self.group().leave(self.member);
    }
}

impl GstObjectImpl for NonstopSwitch {}

impl ElementImpl for NonstopSwitch {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "nonstop input switch",
                "Generic",
                "Priority input switch that fails over on stall and whose output never stops: \
                 one frame per period, repeat then black when inputs are lost",
                "nonstop developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps: gst::Caps = "video/x-raw; audio/x-raw".parse().expect("template caps");
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
                gst::PadTemplate::with_gtype(
                    "sink_%u",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &caps,
                    NonstopSwitchSinkPad::static_type(),
                )
                .expect("sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let mut st = self.lock_state();
        let index = match name {
            Some(n) => {
                let Some(i) = index_of(n) else {
                    gst::warning!(CAT, imp = self, "pad name {n} is not sink_N");
                    return None;
                };
                if st.inputs.iter().any(|x| x.index == i) {
                    gst::warning!(CAT, imp = self, "pad {n} exists already");
                    return None;
                }
                i
            }
            None => st.inputs.iter().map(|x| x.index + 1).max().unwrap_or(0),
        };
        let pad = gst::PadBuilder::<NonstopSwitchSinkPad>::from_template(templ)
            .name(format!("sink_{index}").as_str())
            .chain_function(|pad, parent, buffer| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |s| s.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || false,
                    |s| s.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                NonstopSwitch::catch_panic_pad_function(
                    parent,
                    || false,
                    |s| s.sink_query(pad, query),
                )
            })
            .build();
        st.inputs.push(Input::new(pad.clone(), index));
        drop(st);

        let obj = self.obj();
        if obj.current_state() > gst::State::Ready {
            let _ = pad.set_active(true);
        }
        obj.add_pad(&pad).ok()?;
        obj.child_added(&pad, &pad.name());
        let _ = obj.post_message(gst::message::Latency::builder().src(&*obj).build());
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        {
            let mut st = self.lock_state();
            st.inputs.retain(|i| i.pad.upcast_ref::<gst::Pad>() != pad);
        }
        let _ = pad.set_active(false);
        let obj = self.obj();
        let _ = obj.remove_pad(pad);
        obj.child_removed(pad, &pad.name());
    }

    /// EOS sent to the element ends the output at the next slot: inputs
    /// such as a still-image slate never end by themselves.
    fn send_event(&self, event: gst::Event) -> bool {
        if event.type_() != gst::EventType::Eos {
            return self.parent_send_event(event);
        }
        let mut st = self.lock_state();
        if st.eos_sent {
            return true;
        }
        if st.playing {
            st.eos_requested = true;
            drop(st);
            self.cond.notify_all();
            return true;
        }
        st.eos_sent = true;
        drop(st);
        self.src_pad.push_event(event)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PlayingToPaused {
            let mut st = self.lock_state();
            st.playing = false;
            if let Some(id) = st.clock_id.take() {
                id.unschedule();
            }
            Self::wake_task(&mut st);
            drop(st);
            self.cond.notify_all();
        }

        let mut res = self.parent_change_state(transition)?;

        match transition {
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused => {
                res = gst::StateChangeSuccess::NoPreroll;
            }
            gst::StateChange::PausedToPlaying => {
                {
                    let obj = self.obj();
                    let clock = obj.clock();
                    let mut st = self.lock_state();
                    st.base = obj.base_time().unwrap_or(ClockTime::ZERO);
                    if st.clock != clock {
                        st.pacer = clock.as_ref().and_then(Pacer::for_clock).map(Arc::new);
                        st.armed = None;
                        st.clock = clock;
                    }
                    st.output_stopped = false;
                    st.playing = true;
                }
                let weak = self.obj().downgrade();
                self.src_pad
                    .start_task(move || {
                        if let Some(obj) = weak.upgrade() {
                            obj.imp().src_loop();
                        }
                    })
                    .map_err(|_| gst::StateChangeError)?;
            }
            gst::StateChange::PausedToReady => self.reset(),
            _ => {}
        }
        Ok(res)
    }
}

impl ChildProxyImpl for NonstopSwitch {
    fn children_count(&self) -> u32 {
        self.obj().num_sink_pads() as u32
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|p| p.upcast())
    }

    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .sink_pads()
            .into_iter()
            .nth(index as usize)
            .map(|p| p.upcast())
    }
}
