//! The `nonstopswitch` element: a frame synchronizer with priority failover.
//!
//! Sink pads queue their input (`sink`). Every output slot publishes the
//! inputs' health to the switch group, applies the group's decision, and
//! pushes one frame (or audio chunk) with the slot's timestamp (`output`):
//! the input on air's, else a repeat or black / silence (`filler`), faded
//! in after an audio switch (`crossfade`), on the slot grid (`timeline`).
//! While the input on air delivers in time, its own streaming thread sends
//! the slots; a task on the src pad sends the ones it does not, paced by
//! the pipeline clock (`pacing`); inputs off air wait for the next slot
//! (`hold`). This file: the element's state and its GStreamer glue; the
//! properties are in `properties`, the src pad's queries and events in
//! `src`.
//!
//! Lock order: `settings` is only ever held alone (copied out); `push` is
//! taken before `state` (with `state` held, `push` is only tried, never
//! waited for); `state` may be held while taking the group's lock, never
//! the other way round. Nothing is pushed, posted or notified while `state`
//! is held.

mod crossfade;
mod filler;
mod hold;
mod output;
mod pacing;
mod properties;
mod sink;
mod src;
mod timeline;

use pacing::grace as grace_of;
use properties::Settings;
use timeline::Timeline;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::group::{Group, Local, Published};
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
