//! The sink pad subclass: per-input properties. Values the element updates
//! on the streaming path are atomics so reading them never takes its lock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::PadState;

pub const PROP_PRIORITY: &str = "priority";
pub const PROP_STATE: &str = "state";
pub const PROP_FRAMES_IN: &str = "frames-in";
pub const PROP_LAST_SEEN: &str = "last-seen";
pub const PROP_RETURN_HOLDOFF: &str = "return-holdoff";

const UNSET: u32 = u32::MAX;

#[derive(Debug)]
pub struct NonstopSwitchSinkPad {
    /// N of `sink_N` (`UNSET` until first asked), parsed once: the name is
    /// fixed before the pad is added, and the priority is read at every
    /// output slot.
    index: AtomicU32,
    /// `UNSET` until set: then the pad's index is its priority.
    priority: AtomicU32,
    state: AtomicU32,
    frames_in: AtomicU64,
    last_seen: AtomicU64,
}

impl Default for NonstopSwitchSinkPad {
    fn default() -> Self {
        Self {
            index: AtomicU32::new(UNSET),
            priority: AtomicU32::new(UNSET),
            state: AtomicU32::new(PadState::Waiting as u32),
            frames_in: AtomicU64::new(0),
            last_seen: AtomicU64::new(u64::MAX),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for NonstopSwitchSinkPad {
    const NAME: &'static str = "GstNonstopSwitchSinkPad";
    type Type = super::NonstopSwitchSinkPad;
    type ParentType = gst::Pad;
}

/// Index N of a pad named `sink_N`.
pub fn index_of(name: &str) -> Option<u32> {
    name.strip_prefix("sink_")?.parse().ok()
}

impl NonstopSwitchSinkPad {
    pub fn index(&self) -> u32 {
        match self.index.load(Ordering::Relaxed) {
            UNSET => {
                let i = index_of(&self.obj().name()).unwrap_or(0);
                self.index.store(i, Ordering::Relaxed);
                i
            }
            i => i,
        }
    }

    pub fn priority(&self) -> u32 {
        match self.priority.load(Ordering::Relaxed) {
            UNSET => self.index(),
            p => p,
        }
    }

    pub fn pad_state(&self) -> PadState {
        match self.state.load(Ordering::Relaxed) {
            1 => PadState::Healthy,
            2 => PadState::Stalled,
            3 => PadState::Eos,
            _ => PadState::Waiting,
        }
    }

    /// Returns true if the state changed.
    pub fn set_pad_state(&self, s: PadState) -> bool {
        self.state.swap(s as u32, Ordering::Relaxed) != s as u32
    }

    pub fn count_frame(&self, seen: Option<gst::ClockTime>) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = seen {
            self.last_seen.store(t.nseconds(), Ordering::Relaxed);
        }
    }
}

impl ObjectImpl for NonstopSwitchSinkPad {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder(PROP_PRIORITY)
                    .nick("Priority")
                    .blurb("Lower wins; default: the pad's index (sink_0 first)")
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(PROP_STATE, PadState::Waiting)
                    .nick("State")
                    .blurb("Health of this input")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FRAMES_IN)
                    .nick("Frames in")
                    .blurb("Buffers received on this pad")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_LAST_SEEN)
                    .nick("Last seen")
                    .blurb(
                        "Running time of the last buffer's arrival (GST_CLOCK_TIME_NONE if none)",
                    )
                    .default_value(u64::MAX)
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_RETURN_HOLDOFF)
                    .nick("Return hold-off")
                    .blurb(
                        "How long (ns) this input must be clean before the switch returns to it: \
                         return-after, doubled by flap damping",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == PROP_PRIORITY {
            self.priority
                .store(value.get::<u32>().expect("type checked"), Ordering::Relaxed);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            PROP_PRIORITY => self.priority().to_value(),
            PROP_STATE => self.pad_state().to_value(),
            PROP_FRAMES_IN => self.frames_in.load(Ordering::Relaxed).to_value(),
            PROP_LAST_SEEN => self.last_seen.load(Ordering::Relaxed).to_value(),
            PROP_RETURN_HOLDOFF => {
                // Kept by the element's switch group, not by the pad.
                let switch = self.obj().parent().and_downcast::<super::NonstopSwitch>();
                switch
                    .map_or(0, |s| s.imp().return_holdoff(self.index()).nseconds())
                    .to_value()
            }
            _ => unreachable!("unknown property {}", pspec.name()),
        }
    }
}

impl GstObjectImpl for NonstopSwitchSinkPad {}
impl PadImpl for NonstopSwitchSinkPad {}
