//! The element's properties: their names and defaults, the `Settings` they
//! set, and what reads and writes them (`ObjectImpl` hands them here).
//! `settings` is only ever held alone: readers copy it out.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::decide::Policy;
use super::super::sinkpad::index_of;
use super::super::SwitchMode;
use super::{NonstopSwitch, CAT};

const PROP_TIMEOUT: &str = "timeout";
const PROP_LATENCY: &str = "latency";
const PROP_AUTO_RETURN: &str = "auto-return";
const PROP_RETURN_AFTER: &str = "return-after";
pub(super) const PROP_ACTIVE_PAD: &str = "active-pad";
const PROP_MODE: &str = "mode";
const PROP_MANUAL_FAILOVER: &str = "manual-failover";
const PROP_LOSS_REPEAT: &str = "loss-repeat";
const PROP_CLEAN_GAP: &str = "clean-gap";
const PROP_FLAP_WINDOW: &str = "flap-window";
const PROP_MAX_RETURN_AFTER: &str = "max-return-after";
const PROP_STARTUP_GRACE: &str = "startup-grace";
const PROP_EPOCH_GRID: &str = "epoch-grid";
const PROP_SYNC_INPUTS: &str = "sync-inputs";
const PROP_GROUP: &str = "group";
const PROP_SWITCHES: &str = "switches";
const PROP_FRAMES_OUT: &str = "frames-out";
const PROP_FRAMES_REPEATED: &str = "frames-repeated";
const PROP_FRAMES_BLACK: &str = "frames-black";

const DEFAULT_TIMEOUT: ClockTime = ClockTime::from_mseconds(500);
const DEFAULT_RETURN_AFTER: ClockTime = ClockTime::from_seconds(5);
const DEFAULT_LOSS_REPEAT: ClockTime = ClockTime::from_seconds(1);
/// MediaLive's smallest input-loss threshold: shorter holes are jitter.
const DEFAULT_CLEAN_GAP: ClockTime = ClockTime::from_mseconds(100);
const DEFAULT_FLAP_WINDOW: ClockTime = ClockTime::from_seconds(300);
const DEFAULT_MAX_RETURN_AFTER: ClockTime = ClockTime::from_seconds(300);
const DEFAULT_STARTUP_GRACE: ClockTime = ClockTime::from_seconds(1);

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) timeout: ClockTime,
    pub(super) latency: ClockTime,
    pub(super) auto_return: bool,
    pub(super) return_after: ClockTime,
    pub(super) manual_failover: bool,
    pub(super) loss_repeat: ClockTime,
    pub(super) clean_gap: ClockTime,
    pub(super) flap_window: ClockTime,
    pub(super) max_return_after: ClockTime,
    pub(super) startup_grace: ClockTime,
    pub(super) sync_inputs: bool,
    pub(super) epoch_grid: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            latency: ClockTime::ZERO,
            auto_return: true,
            return_after: DEFAULT_RETURN_AFTER,
            manual_failover: true,
            loss_repeat: DEFAULT_LOSS_REPEAT,
            clean_gap: DEFAULT_CLEAN_GAP,
            flap_window: DEFAULT_FLAP_WINDOW,
            max_return_after: DEFAULT_MAX_RETURN_AFTER,
            startup_grace: DEFAULT_STARTUP_GRACE,
            sync_inputs: true,
            epoch_grid: false,
        }
    }
}

impl Settings {
    pub(super) fn policy(&self) -> Policy {
        Policy {
            auto_return: self.auto_return,
            return_after: self.return_after,
            manual_failover: self.manual_failover,
            flap_window: self.flap_window,
            max_return_after: self.max_return_after,
            startup_grace: self.startup_grace,
        }
    }
}

impl NonstopSwitch {
    pub(super) fn property_specs() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt64::builder(PROP_TIMEOUT)
                    .nick("Timeout")
                    .blurb("An input with no buffer for this long (ns) is stalled and the switch fails over")
                    .minimum(1)
                    .default_value(DEFAULT_TIMEOUT.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_LATENCY)
                    .nick("Latency")
                    .blurb("Jitter allowance (ns): extra input buffering before output")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_AUTO_RETURN)
                    .nick("Auto return")
                    .blurb("Return to a higher-priority input once it has been healthy for return-after")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_RETURN_AFTER)
                    .nick("Return after")
                    .blurb("How long (ns) a higher-priority input must be continuously healthy before the switch returns to it")
                    .default_value(DEFAULT_RETURN_AFTER.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecObject::builder::<gst::Pad>(PROP_ACTIVE_PAD)
                    .nick("Active pad")
                    .blurb("The input on air; writing it switches manually and sets mode=manual")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default(PROP_MODE, SwitchMode::Auto)
                    .nick("Mode")
                    .blurb("auto: best healthy input by priority; manual: the input set with active-pad")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_MANUAL_FAILOVER)
                    .nick("Manual failover")
                    .blurb("In manual mode, still fail over when the chosen input stalls")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_LOSS_REPEAT)
                    .nick("Loss repeat")
                    .blurb("With no healthy input, repeat the last frame this long (ns), then emit black")
                    .default_value(DEFAULT_LOSS_REPEAT.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_CLEAN_GAP)
                    .nick("Clean gap")
                    .blurb("An input whose buffer comes this much (ns) later than the previous buffer's duration, or with new caps, a DISCONT or an unhealthy flag, was interrupted: return-after counts again from there")
                    .default_value(DEFAULT_CLEAN_GAP.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FLAP_WINDOW)
                    .nick("Flap window")
                    .blurb("Each failover away from an input within this long (ns) of the previous one doubles its hold-off before a return; clean this long, it is back to return-after")
                    .default_value(DEFAULT_FLAP_WINDOW.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_MAX_RETURN_AFTER)
                    .nick("Max return after")
                    .blurb("The doubled hold-off of a flapping input never exceeds this (ns)")
                    .default_value(DEFAULT_MAX_RETURN_AFTER.nseconds())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_STARTUP_GRACE)
                    .nick("Startup grace")
                    .blurb("Before anything is on air, how long (ns) a lower input waits for a better one that has not delivered yet (black meanwhile), so the output does not start on a backup only to cut to the primary")
                    .default_value(DEFAULT_STARTUP_GRACE.nseconds())
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_EPOCH_GRID)
                    .nick("Epoch grid")
                    .blurb("Anchor the output's slot grid at running time 0 instead of at its first start: switches in different processes whose pipelines share clock and base time (a UTC clock) give their slots the same times")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder(PROP_SYNC_INPUTS)
                    .nick("Sync inputs")
                    .blurb("Hold each buffer of an input off air until the output has sent its next slot (at most a slot and a grace), as input-selector's sync-streams: a live source off air then does not sleep on the clock for every frame. On the system clock, for inputs no faster than the output; their health is judged on arrival, as without")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(PROP_GROUP)
                    .nick("Group")
                    .blurb("Switches with the same group in one process share health and switch together (e.g. video + audio of one channel)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_SWITCHES)
                    .nick("Switches")
                    .blurb("Number of input changes so far")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FRAMES_OUT)
                    .nick("Frames out")
                    .blurb("Frames (audio: 10 ms chunks) emitted")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FRAMES_REPEATED)
                    .nick("Frames repeated")
                    .blurb("Video frames emitted again because no new frame was there")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FRAMES_BLACK)
                    .nick("Frames black")
                    .blurb("Black frames (audio: chunks with inserted silence) emitted")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    pub(super) fn set_property_value(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        let get_time = || ClockTime::from_nseconds(value.get::<u64>().expect("type checked"));
        let mut post_latency = false;
        {
            let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            match pspec.name() {
                PROP_TIMEOUT => s.timeout = get_time(),
                PROP_LATENCY => {
                    s.latency = get_time();
                    post_latency = true;
                }
                PROP_AUTO_RETURN => s.auto_return = value.get().expect("type checked"),
                PROP_RETURN_AFTER => s.return_after = get_time(),
                PROP_MANUAL_FAILOVER => s.manual_failover = value.get().expect("type checked"),
                PROP_LOSS_REPEAT => s.loss_repeat = get_time(),
                PROP_CLEAN_GAP => s.clean_gap = get_time(),
                PROP_FLAP_WINDOW => s.flap_window = get_time(),
                PROP_MAX_RETURN_AFTER => s.max_return_after = get_time(),
                PROP_STARTUP_GRACE => s.startup_grace = get_time(),
                PROP_EPOCH_GRID => s.epoch_grid = value.get().expect("type checked upstream"),
                PROP_SYNC_INPUTS => s.sync_inputs = value.get().expect("type checked"),
                PROP_GROUP => {
                    drop(s);
                    let name = value
                        .get::<Option<String>>()
                        .expect("type checked")
                        .unwrap_or_default();
                    self.set_group(&name);
                    return;
                }
                PROP_MODE => {
                    let mode = value.get::<SwitchMode>().expect("type checked");
                    drop(s);
                    self.group().set_manual_mode(mode == SwitchMode::Manual);
                    return;
                }
                PROP_ACTIVE_PAD => {
                    drop(s);
                    let pad = value.get::<Option<gst::Pad>>().expect("type checked");
                    let index = pad.as_ref().and_then(|p| {
                        let ours = p
                            .parent()
                            .is_some_and(|o| o == *self.obj().upcast_ref::<gst::Object>());
                        ours.then(|| index_of(&p.name())).flatten()
                    });
                    match index {
                        Some(i) => {
                            gst::info!(CAT, imp = self, "manual switch to sink_{i} requested");
                            self.group().set_manual(i);
                        }
                        None => gst::warning!(
                            CAT,
                            imp = self,
                            "active-pad must be one of this element's sink pads, got {:?}",
                            pad.map(|p| p.name())
                        ),
                    }
                    return;
                }
                other => unreachable!("unknown property {other}"),
            }
        }
        if post_latency {
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
    }

    pub(super) fn property_value(&self, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            PROP_TIMEOUT => s.timeout.nseconds().to_value(),
            PROP_LATENCY => s.latency.nseconds().to_value(),
            PROP_AUTO_RETURN => s.auto_return.to_value(),
            PROP_RETURN_AFTER => s.return_after.nseconds().to_value(),
            PROP_MANUAL_FAILOVER => s.manual_failover.to_value(),
            PROP_LOSS_REPEAT => s.loss_repeat.nseconds().to_value(),
            PROP_CLEAN_GAP => s.clean_gap.nseconds().to_value(),
            PROP_FLAP_WINDOW => s.flap_window.nseconds().to_value(),
            PROP_MAX_RETURN_AFTER => s.max_return_after.nseconds().to_value(),
            PROP_STARTUP_GRACE => s.startup_grace.nseconds().to_value(),
            PROP_EPOCH_GRID => s.epoch_grid.to_value(),
            PROP_SYNC_INPUTS => s.sync_inputs.to_value(),
            PROP_GROUP => {
                let name = self.group_name.lock().unwrap_or_else(|e| e.into_inner());
                (!name.is_empty()).then(|| name.clone()).to_value()
            }
            PROP_MODE => if self.group().control().manual {
                SwitchMode::Manual
            } else {
                SwitchMode::Auto
            }
            .to_value(),
            PROP_ACTIVE_PAD => {
                let st = self.lock_state();
                let a = st.active;
                st.inputs
                    .iter()
                    .find(|i| Some(i.index) == a)
                    .map(|i| i.pad.clone().upcast::<gst::Pad>())
                    .to_value()
            }
            PROP_SWITCHES => self.lock_state().switches.to_value(),
            PROP_FRAMES_OUT => self.lock_state().frames_out.to_value(),
            PROP_FRAMES_REPEATED => self.lock_state().frames_repeated.to_value(),
            PROP_FRAMES_BLACK => self.lock_state().frames_black.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}
