//! The `nonstopwatchdog` element: an in-place passthrough that raises and
//! clears alarms (stall, freeze, black, silence) and tells a downstream
//! `nonstopswitch` whether its input is usable (see crate::health).
//!
//! Content alarms are timed by the buffers' running times; the stall alarm
//! by the pipeline clock, through an asynchronous clock id re-armed lazily
//! (once per timeout while data flows), so it fires without a next buffer.
//!
//! Lock order: `settings` is only copied out; `state` is never held while
//! posting, pushing or scheduling on the clock.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use super::analysis;
use super::Alarms;
use crate::health::health_event;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "nonstopwatchdog",
        gst::DebugColorFlags::empty(),
        Some("nonstop input health watchdog"),
    )
});

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

pub const MSG_ALARM: &str = "nonstop-alarm";

#[derive(Debug, Clone, Copy)]
struct Settings {
    stall_timeout: ClockTime,
    freeze_timeout: ClockTime,
    freeze_tolerance: f64,
    black_timeout: ClockTime,
    black_threshold: f64,
    black_ratio: f64,
    silence_timeout: ClockTime,
    silence_threshold: f64,
    fail_on: Alarms,
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

/// One timed condition: bad since `since`, raised once bad for the timeout.
#[derive(Debug, Default, Clone, Copy)]
struct Detector {
    since: Option<ClockTime>,
    raised: bool,
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Raised {
        since: ClockTime,
    },
    Cleared {
        since: ClockTime,
        duration: ClockTime,
    },
}

impl Detector {
    /// `bad_since`: when the condition began if it holds at `t`, else None.
    fn update(
        &mut self,
        bad_since: Option<ClockTime>,
        t: ClockTime,
        timeout: ClockTime,
    ) -> Option<Change> {
        match bad_since {
            Some(begin) if !timeout.is_zero() => {
                let since = *self.since.get_or_insert(begin);
                if !self.raised && t.saturating_sub(since) >= timeout {
                    self.raised = true;
                    return Some(Change::Raised { since });
                }
                None
            }
            _ => {
                let since = self.since.take()?;
                if std::mem::take(&mut self.raised) {
                    return Some(Change::Cleared {
                        since,
                        duration: t.saturating_sub(since),
                    });
                }
                None
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Media {
    Other,
    Video(gst_video::VideoInfo),
    Audio(gst_audio::AudioInfo),
}

#[derive(Debug)]
struct State {
    media: Media,
    stall: Detector,
    freeze: Detector,
    black: Detector,
    silence: Detector,
    /// Reference picture of the freeze detector and when it was seen.
    reference: Option<(Vec<f32>, ClockTime)>,
    last_seen: Option<ClockTime>,
    /// The stall timer and the running time it fires at.
    timer: Option<(gst::SingleShotClockId, ClockTime)>,
    /// Health last told downstream (None: nothing said yet = healthy).
    told_healthy: Option<bool>,
    playing: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            media: Media::Other,
            stall: Detector::default(),
            freeze: Detector::default(),
            black: Detector::default(),
            silence: Detector::default(),
            reference: None,
            last_seen: None,
            timer: None,
            told_healthy: None,
            playing: false,
        }
    }
}

impl State {
    fn alarms(&self) -> Alarms {
        let mut a = Alarms::empty();
        a.set(Alarms::STALL, self.stall.raised);
        a.set(Alarms::FREEZE, self.freeze.raised);
        a.set(Alarms::BLACK, self.black.raised);
        a.set(Alarms::SILENCE, self.silence.raised);
        a
    }

    /// The health event to send if the health as seen downstream changed.
    fn health_update(&mut self, fail_on: Alarms) -> Option<gst::Event> {
        let failing = self.alarms() & fail_on;
        let healthy = failing.is_empty();
        if self.told_healthy.unwrap_or(true) == healthy {
            return None;
        }
        self.told_healthy = Some(healthy);
        Some(health_event(healthy, &alarm_names(failing)))
    }
}

fn alarm_names(a: Alarms) -> String {
    [
        (Alarms::STALL, "stall"),
        (Alarms::FREEZE, "freeze"),
        (Alarms::BLACK, "black"),
        (Alarms::SILENCE, "silence"),
    ]
    .iter()
    .filter(|(f, _)| a.contains(*f))
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join("+")
}

#[derive(Default)]
pub struct NonstopWatchdog {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

/// What a buffer or the timer changed, posted and pushed without the lock.
#[derive(Default)]
struct Outcome {
    messages: Vec<gst::Message>,
    health: Option<gst::Event>,
}

impl NonstopWatchdog {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn settings(&self) -> Settings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn clock_running_time(&self) -> Option<ClockTime> {
        let obj = self.obj();
        obj.clock()?.time().checked_sub(obj.base_time()?)
    }

    fn alarm_message(&self, kind: &str, change: Change, value: f64) -> gst::Message {
        let mut b = gst::Structure::builder(MSG_ALARM).field("kind", kind);
        b = match change {
            Change::Raised { since } => b.field("state", "raised").field("since", since.nseconds()),
            Change::Cleared { since, duration } => b
                .field("state", "cleared")
                .field("since", since.nseconds())
                .field("duration", duration.nseconds()),
        };
        let s = b.field("value", value).build();
        gst::info!(CAT, imp = self, "{s}");
        gst::message::Element::builder(s).src(&*self.obj()).build()
    }

    fn deliver(&self, out: Outcome) {
        for m in out.messages {
            let _ = self.obj().post_message(m);
        }
        if let Some(ev) = out.health {
            gst::debug!(CAT, imp = self, "telling downstream: {ev:?}");
            if let Some(src) = self.obj().static_pad("src") {
                src.push_event(ev);
            }
        }
    }

    /// Arms the stall timer at `at` (running time).
    fn arm_timer(&self, at: ClockTime) {
        let obj = self.obj();
        let (Some(clock), Some(base)) = (obj.clock(), obj.base_time()) else {
            return;
        };
        let id = clock.new_single_shot_id(base + at);
        let weak = obj.downgrade();
        if id
            .wait_async(move |_, _, _| {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().on_timer();
                }
            })
            .is_ok()
        {
            if let Some((old, _)) = self.lock_state().timer.replace((id, at)) {
                old.unschedule();
            }
        }
    }

    fn on_timer(&self) {
        let settings = self.settings();
        let Some(now) = self.clock_running_time() else {
            return;
        };
        let mut st = self.lock_state();
        st.timer = None;
        if !st.playing || settings.stall_timeout.is_zero() {
            return;
        }
        let last = st.last_seen.unwrap_or(now);
        let mut out = Outcome::default();
        if let Some(c) = st.stall.update(Some(last), now, settings.stall_timeout) {
            let secs = now.saturating_sub(last).nseconds() as f64 / 1e9;
            out.messages.push(self.alarm_message("stall", c, secs));
            out.health = st.health_update(settings.fail_on);
        }
        let rearm = (!st.stall.raised).then_some(last + settings.stall_timeout);
        drop(st);
        self.deliver(out);
        if let Some(at) = rearm {
            self.arm_timer(at.max(now + ClockTime::MSECOND));
        }
    }

    fn analyse(
        &self,
        buf: &gst::BufferRef,
        st: &mut State,
        s: &Settings,
        t: ClockTime,
        out: &mut Outcome,
    ) {
        match st.media.clone() {
            Media::Video(info) => {
                if s.freeze_timeout.is_zero() && s.black_timeout.is_zero() {
                    return;
                }
                let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info)
                else {
                    gst::warning!(CAT, imp = self, "cannot map a video frame");
                    return;
                };
                let grid = analysis::luma_grid(&frame);
                let luma = analysis::mean(&grid) as f64;
                let dark = analysis::dark_share(&grid, s.black_threshold as f32) as f64;
                let black = (dark >= s.black_ratio).then_some(t);
                if let Some(c) = st.black.update(black, t, s.black_timeout) {
                    out.messages.push(self.alarm_message("black", c, luma));
                }
                if !s.freeze_timeout.is_zero() {
                    let unchanged = st.reference.as_ref().and_then(|(r, at)| {
                        (analysis::difference(r, &grid) as f64 <= s.freeze_tolerance).then_some(*at)
                    });
                    if unchanged.is_none() {
                        st.reference = Some((grid, t));
                    }
                    if let Some(c) = st.freeze.update(unchanged, t, s.freeze_timeout) {
                        out.messages.push(self.alarm_message("freeze", c, luma));
                    }
                }
            }
            Media::Audio(info) => {
                if s.silence_timeout.is_zero() {
                    return;
                }
                let Ok(map) = buf.map_readable() else {
                    return;
                };
                let db = analysis::loudest_channel_dbfs(&info, &map);
                let silent = (db < s.silence_threshold).then_some(t);
                if let Some(c) = st.silence.update(silent, t, s.silence_timeout) {
                    out.messages
                        .push(self.alarm_message("silence", c, db.max(-200.0)));
                }
            }
            Media::Other => {}
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for NonstopWatchdog {
    const NAME: &'static str = "GstNonstopWatchdog";
    type Type = super::NonstopWatchdog;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for NonstopWatchdog {
    fn properties() -> &'static [glib::ParamSpec] {
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

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
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

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
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

impl GstObjectImpl for NonstopWatchdog {}

impl ElementImpl for NonstopWatchdog {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "nonstop input watchdog",
                "Filter/Analyzer",
                "Passes data through and raises alarms on stall, frozen picture, black and \
                 silence; can mark the input unhealthy for a downstream nonstopswitch",
                "nonstop developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static T: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("src template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("sink template"),
            ]
        });
        T.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::PlayingToPaused {
            let mut st = self.lock_state();
            st.playing = false;
            if let Some((id, _)) = st.timer.take() {
                id.unschedule();
            }
        }
        let res = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToPlaying {
            let timeout = self.settings().stall_timeout;
            let start = {
                let mut st = self.lock_state();
                st.playing = true;
                st.last_seen
            };
            if !timeout.is_zero() {
                let now = self.clock_running_time().unwrap_or(ClockTime::ZERO);
                self.arm_timer(start.unwrap_or(now) + timeout);
            }
        }
        Ok(res)
    }
}

impl BaseTransformImpl for NonstopWatchdog {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let name = incaps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let media = match name.as_str() {
            "video/x-raw" => {
                let info = gst_video::VideoInfo::from_caps(incaps)
                    .map_err(|_| gst::loggable_error!(CAT, "bad video caps {incaps}"))?;
                if !analysis::video_supported(info.format()) {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Negotiation,
                        (
                            "nonstopwatchdog cannot analyse video format {}; use I420, YV12, NV12, \
                             NV21, YUY2, UYVY, 8-bit RGB/BGR(x/A), I420_10LE or I422_10LE \
                             (videoconvert upstream)",
                            info.format().to_str()
                        )
                    );
                    return Err(gst::loggable_error!(CAT, "unsupported video format"));
                }
                Media::Video(info)
            }
            "audio/x-raw" => {
                let info = gst_audio::AudioInfo::from_caps(incaps)
                    .map_err(|_| gst::loggable_error!(CAT, "bad audio caps {incaps}"))?;
                if !analysis::audio_supported(info.format())
                    || info.layout() != gst_audio::AudioLayout::Interleaved
                {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Negotiation,
                        (
                            "nonstopwatchdog cannot analyse audio {} ({:?}); use interleaved \
                             S16LE, S32LE, F32LE or F64LE (audioconvert upstream)",
                            info.format().to_str(),
                            info.layout()
                        )
                    );
                    return Err(gst::loggable_error!(CAT, "unsupported audio format"));
                }
                Media::Audio(info)
            }
            _ => Media::Other,
        };
        let mut st = self.lock_state();
        st.media = media;
        st.reference = None;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let mut st = self.lock_state();
        if let Some((id, _)) = st.timer.take() {
            id.unschedule();
        }
        *st = State::default();
        Ok(())
    }

    fn transform_ip_passthrough(
        &self,
        buf: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings();
        let now = self.clock_running_time();
        let t = buf
            .pts()
            .and_then(|pts| {
                self.obj()
                    .segment()
                    .downcast_ref::<gst::ClockTime>()
                    .and_then(|seg| seg.to_running_time(pts))
            })
            .or(now)
            .unwrap_or(ClockTime::ZERO);

        let mut out = Outcome::default();
        let mut st = self.lock_state();
        // Re-arm only when the timer would fire later than needed (after a
        // stall, or a shorter stall-timeout): once per timeout otherwise.
        let rearm = match (now, st.timer.as_ref()) {
            (Some(now), Some((_, at))) => *at > now + s.stall_timeout,
            _ => true,
        };
        if let Some(now) = now {
            st.last_seen = Some(now);
            if let Some(c) = st.stall.update(None, now, s.stall_timeout) {
                let secs = match c {
                    Change::Cleared { duration, .. } => duration.nseconds() as f64 / 1e9,
                    Change::Raised { .. } => 0.0,
                };
                out.messages.push(self.alarm_message("stall", c, secs));
            }
        }
        self.analyse(buf, &mut st, &s, t, &mut out);
        out.health = st.health_update(s.fail_on);
        let playing = st.playing;
        drop(st);
        self.deliver(out);
        if rearm && playing && !s.stall_timeout.is_zero() {
            if let Some(now) = now {
                self.arm_timer(now + s.stall_timeout);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
