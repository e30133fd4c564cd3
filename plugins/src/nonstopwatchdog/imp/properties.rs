//! The element's properties: their names, the `Settings` they set (with
//! their defaults), and what reads and writes them (`ObjectImpl` hands
//! them here). `settings` is only ever held alone: readers copy it out.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::ClockTime;

use super::super::Alarms;
use super::NonstopWatchdog;

const PROP_STALL_TIMEOUT: &str = "stall-timeout";
const PROP_FREEZE_TIMEOUT: &str = "freeze-timeout";
const PROP_FREEZE_TOLERANCE: &str = "freeze-tolerance";
const PROP_BLACK_TIMEOUT: &str = "black-timeout";
const PROP_BLACK_THRESHOLD: &str = "black-threshold";
const PROP_BLACK_RATIO: &str = "black-ratio";
const PROP_SILENCE_TIMEOUT: &str = "silence-timeout";
const PROP_SILENCE_THRESHOLD: &str = "silence-threshold";
const PROP_FAIL_ON: &str = "fail-on";
const PROP_ALARMS: &str = "alarms";

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) stall_timeout: ClockTime,
    pub(super) freeze_timeout: ClockTime,
    pub(super) freeze_tolerance: f64,
    pub(super) black_timeout: ClockTime,
    pub(super) black_threshold: f64,
    pub(super) black_ratio: f64,
    pub(super) silence_timeout: ClockTime,
    pub(super) silence_threshold: f64,
    pub(super) fail_on: Alarms,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stall_timeout: ClockTime::SECOND,
            freeze_timeout: ClockTime::ZERO,
            freeze_tolerance: 2.0,
            black_timeout: ClockTime::ZERO,
            black_threshold: 0.1,
            black_ratio: 0.98,
            silence_timeout: ClockTime::ZERO,
            silence_threshold: -50.0,
            fail_on: Alarms::STALL,
        }
    }
}

impl NonstopWatchdog {
    pub(super) fn property_specs() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let time = |name: &str, nick: &str, blurb: &str, default: ClockTime| {
                glib::ParamSpecUInt64::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(default.nseconds())
                    .mutable_playing()
                    .build()
            };
            let d = Settings::default();
            vec![
                time(PROP_STALL_TIMEOUT, "Stall timeout", "Raise 'stall' after this long (ns) without a buffer, timed by the clock (0 = off)", d.stall_timeout),
                time(PROP_FREEZE_TIMEOUT, "Freeze timeout", "Raise 'freeze' when the picture has not changed for this long (ns) (0 = off)", d.freeze_timeout),
                glib::ParamSpecDouble::builder(PROP_FREEZE_TOLERANCE)
                    .nick("Freeze tolerance")
                    .blurb("Mean absolute luma difference (8-bit levels) up to which a frame counts as unchanged")
                    .minimum(0.0)
                    .maximum(255.0)
                    .default_value(d.freeze_tolerance)
                    .mutable_playing()
                    .build(),
                time(PROP_BLACK_TIMEOUT, "Black timeout", "Raise 'black' when the picture has been black for this long (ns) (0 = off)", d.black_timeout),
                glib::ParamSpecDouble::builder(PROP_BLACK_THRESHOLD)
                    .nick("Black threshold")
                    .blurb("Luma at or below this share of the range is dark (0.1 = 25 at 8 bit)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.black_threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder(PROP_BLACK_RATIO)
                    .nick("Black ratio")
                    .blurb("Share of sampled pixels that must be dark for a black frame")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.black_ratio)
                    .mutable_playing()
                    .build(),
                time(PROP_SILENCE_TIMEOUT, "Silence timeout", "Raise 'silence' when every channel has been below the threshold this long (ns) (0 = off)", d.silence_timeout),
                glib::ParamSpecDouble::builder(PROP_SILENCE_THRESHOLD)
                    .nick("Silence threshold")
                    .blurb("RMS level (dBFS) below which a channel is silent")
                    .minimum(-200.0)
                    .maximum(0.0)
                    .default_value(d.silence_threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFlags::builder::<Alarms>(PROP_FAIL_ON)
                    .nick("Fail on")
                    .blurb("Alarms that mark the stream unhealthy for a downstream nonstopswitch (nonstop-health event)")
                    .default_value(d.fail_on)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFlags::builder::<Alarms>(PROP_ALARMS)
                    .nick("Alarms")
                    .blurb("Alarms currently raised")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    pub(super) fn set_property_value(&self, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let time = || ClockTime::from_nseconds(value.get::<u64>().expect("type checked"));
        match pspec.name() {
            PROP_STALL_TIMEOUT => s.stall_timeout = time(),
            PROP_FREEZE_TIMEOUT => s.freeze_timeout = time(),
            PROP_FREEZE_TOLERANCE => s.freeze_tolerance = value.get().expect("type checked"),
            PROP_BLACK_TIMEOUT => s.black_timeout = time(),
            PROP_BLACK_THRESHOLD => s.black_threshold = value.get().expect("type checked"),
            PROP_BLACK_RATIO => s.black_ratio = value.get().expect("type checked"),
            PROP_SILENCE_TIMEOUT => s.silence_timeout = time(),
            PROP_SILENCE_THRESHOLD => s.silence_threshold = value.get().expect("type checked"),
            PROP_FAIL_ON => s.fail_on = value.get().expect("type checked"),
            other => unreachable!("unknown property {other}"),
        }
    }

    pub(super) fn property_value(&self, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            PROP_STALL_TIMEOUT => s.stall_timeout.nseconds().to_value(),
            PROP_FREEZE_TIMEOUT => s.freeze_timeout.nseconds().to_value(),
            PROP_FREEZE_TOLERANCE => s.freeze_tolerance.to_value(),
            PROP_BLACK_TIMEOUT => s.black_timeout.nseconds().to_value(),
            PROP_BLACK_THRESHOLD => s.black_threshold.to_value(),
            PROP_BLACK_RATIO => s.black_ratio.to_value(),
            PROP_SILENCE_TIMEOUT => s.silence_timeout.nseconds().to_value(),
            PROP_SILENCE_THRESHOLD => s.silence_threshold.to_value(),
            PROP_FAIL_ON => s.fail_on.to_value(),
            PROP_ALARMS => self.lock_state().alarms().to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}
