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
const PROP_LOUDNESS_INTERVAL: &str = "loudness-interval";
const PROP_LOUD_TIMEOUT: &str = "loud-timeout";
const PROP_LOUD_THRESHOLD: &str = "loud-threshold";
const PROP_QUIET_TIMEOUT: &str = "quiet-timeout";
const PROP_QUIET_THRESHOLD: &str = "quiet-threshold";
const PROP_TRUE_PEAK_TIMEOUT: &str = "true-peak-timeout";
const PROP_TRUE_PEAK_LIMIT: &str = "true-peak-limit";
const PROP_JUMP_TIMEOUT: &str = "jump-timeout";
const PROP_JUMP_THRESHOLD: &str = "jump-threshold";
const PROP_CAPTIONS_TIMEOUT: &str = "captions-timeout";
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
    pub(super) loudness_interval: ClockTime,
    pub(super) loud_timeout: ClockTime,
    pub(super) loud_threshold: f64,
    pub(super) quiet_timeout: ClockTime,
    pub(super) quiet_threshold: f64,
    pub(super) true_peak_timeout: ClockTime,
    pub(super) true_peak_limit: f64,
    pub(super) jump_timeout: ClockTime,
    pub(super) jump_threshold: f64,
    pub(super) captions_timeout: ClockTime,
    pub(super) fail_on: Alarms,
}

impl Settings {
    /// Whether audio is metered at all: for the messages or an alarm.
    pub(super) fn loudness_metered(&self) -> bool {
        [
            self.loudness_interval,
            self.loud_timeout,
            self.quiet_timeout,
            self.true_peak_timeout,
            self.jump_timeout,
        ]
        .iter()
        .any(|t| !t.is_zero())
    }
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
            loudness_interval: ClockTime::ZERO,
            loud_timeout: ClockTime::ZERO,
            // EBU R128's target is −23 LUFS; 10 LU over it is loud, 17
            // under it quiet (silence has its own alarm); −1 dBTP is R128's
            // maximum true peak.
            loud_threshold: -13.0,
            quiet_timeout: ClockTime::ZERO,
            quiet_threshold: -40.0,
            true_peak_timeout: ClockTime::ZERO,
            true_peak_limit: -1.0,
            jump_timeout: ClockTime::ZERO,
            jump_threshold: 10.0,
            captions_timeout: ClockTime::ZERO,
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
            let lufs = |name: &str, nick: &str, blurb: &str, default: f64| {
                glib::ParamSpecDouble::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(-70.0)
                    .maximum(0.0)
                    .default_value(default)
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
                time(PROP_LOUDNESS_INTERVAL, "Loudness interval", "Post a nonstop-loudness message (EBU R128 momentary, short-term, integrated, range, true peak) this often (ns) (0 = off)", d.loudness_interval),
                time(PROP_LOUD_TIMEOUT, "Loud timeout", "Raise 'loud' when short-term loudness has been above loud-threshold this long (ns) (0 = off)", d.loud_timeout),
                lufs(PROP_LOUD_THRESHOLD, "Loud threshold", "Short-term loudness (LUFS) above which the sound is too loud", d.loud_threshold),
                time(PROP_QUIET_TIMEOUT, "Quiet timeout", "Raise 'quiet' when short-term loudness has been below quiet-threshold this long (ns) (0 = off)", d.quiet_timeout),
                lufs(PROP_QUIET_THRESHOLD, "Quiet threshold", "Short-term loudness (LUFS) below which the sound is too quiet", d.quiet_threshold),
                time(PROP_TRUE_PEAK_TIMEOUT, "True peak timeout", "Raise 'true-peak' when the true peak has passed true-peak-limit within each second for this long (ns) (0 = off)", d.true_peak_timeout),
                glib::ParamSpecDouble::builder(PROP_TRUE_PEAK_LIMIT)
                    .nick("True peak limit")
                    .blurb("True peak (dBTP) the sound must stay under")
                    .minimum(-60.0)
                    .maximum(12.0)
                    .default_value(d.true_peak_limit)
                    .mutable_playing()
                    .build(),
                time(PROP_JUMP_TIMEOUT, "Jump timeout", "Raise 'jump' when short-term loudness has moved by jump-threshold within 3 s, held this long (ns) (0 = off)", d.jump_timeout),
                glib::ParamSpecDouble::builder(PROP_JUMP_THRESHOLD)
                    .nick("Jump threshold")
                    .blurb("Change of short-term loudness (LU) within 3 s that is a sudden jump")
                    .minimum(1.0)
                    .maximum(60.0)
                    .default_value(d.jump_threshold)
                    .mutable_playing()
                    .build(),
                time(PROP_CAPTIONS_TIMEOUT, "Captions timeout", "Raise 'no-captions' when the pictures have carried no closed captions (GstVideoCaptionMeta) for this long (ns) (0 = off)", d.captions_timeout),
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
            PROP_LOUDNESS_INTERVAL => s.loudness_interval = time(),
            PROP_LOUD_TIMEOUT => s.loud_timeout = time(),
            PROP_LOUD_THRESHOLD => s.loud_threshold = value.get().expect("type checked"),
            PROP_QUIET_TIMEOUT => s.quiet_timeout = time(),
            PROP_QUIET_THRESHOLD => s.quiet_threshold = value.get().expect("type checked"),
            PROP_TRUE_PEAK_TIMEOUT => s.true_peak_timeout = time(),
            PROP_TRUE_PEAK_LIMIT => s.true_peak_limit = value.get().expect("type checked"),
            PROP_JUMP_TIMEOUT => s.jump_timeout = time(),
            PROP_JUMP_THRESHOLD => s.jump_threshold = value.get().expect("type checked"),
            PROP_CAPTIONS_TIMEOUT => s.captions_timeout = time(),
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
            PROP_LOUDNESS_INTERVAL => s.loudness_interval.nseconds().to_value(),
            PROP_LOUD_TIMEOUT => s.loud_timeout.nseconds().to_value(),
            PROP_LOUD_THRESHOLD => s.loud_threshold.to_value(),
            PROP_QUIET_TIMEOUT => s.quiet_timeout.nseconds().to_value(),
            PROP_QUIET_THRESHOLD => s.quiet_threshold.to_value(),
            PROP_TRUE_PEAK_TIMEOUT => s.true_peak_timeout.nseconds().to_value(),
            PROP_TRUE_PEAK_LIMIT => s.true_peak_limit.to_value(),
            PROP_JUMP_TIMEOUT => s.jump_timeout.nseconds().to_value(),
            PROP_JUMP_THRESHOLD => s.jump_threshold.to_value(),
            PROP_CAPTIONS_TIMEOUT => s.captions_timeout.nseconds().to_value(),
            PROP_FAIL_ON => s.fail_on.to_value(),
            PROP_ALARMS => self.lock_state().alarms().to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}
