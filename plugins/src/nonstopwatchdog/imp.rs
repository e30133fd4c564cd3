//! The `nonstopwatchdog` element: an in-place passthrough that raises and
//! clears alarms (stall, freeze, black, silence, and the loudness alarms
//! loud, quiet, true-peak, jump; no-captions) and tells a downstream
//! `nonstopswitch` whether its input is usable (see crate::health).
//!
//! Content alarms are timed by the buffers' running times; the stall alarm
//! by the pipeline clock, through an asynchronous clock id re-armed lazily
//! (once per timeout while data flows), so it fires without a next buffer.
//!
//! This file: the element's state, what a buffer does to it, and the
//! GStreamer glue. The detectors (when an alarm is raised and cleared) are
//! in `detectors`, the loudness alarms and messages in `loud`, the
//! properties in `properties`.
//!
//! Lock order: `settings` is only copied out; `state` is never held while
//! posting, pushing or scheduling on the clock.

mod detectors;
mod loud;
mod properties;

use detectors::{Change, Detector};
use properties::Settings;

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

pub const MSG_ALARM: &str = "nonstop-alarm";
pub const MSG_LOUDNESS: &str = "nonstop-loudness";

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
    /// Pictures without closed captions.
    captions: Detector,
    /// The loudness meter and its alarms (audio only, when measured).
    loudness: loud::Loudness,
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
            captions: Detector::default(),
            loudness: loud::Loudness::default(),
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
        a.set(Alarms::NO_CAPTIONS, self.captions.raised);
        a | self.loudness.alarms()
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
        (Alarms::LOUD, "loud"),
        (Alarms::QUIET, "quiet"),
        (Alarms::TRUE_PEAK, "true-peak"),
        (Alarms::JUMP, "jump"),
        (Alarms::NO_CAPTIONS, "no-captions"),
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
}

#[glib::object_subclass]
impl ObjectSubclass for NonstopWatchdog {
    const NAME: &'static str = "GstNonstopWatchdog";
    type Type = super::NonstopWatchdog;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for NonstopWatchdog {
    fn properties() -> &'static [glib::ParamSpec] {
        Self::property_specs()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.set_property_value(value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.property_value(pspec)
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
        // New caps (rate, channels) start a new measurement.
        st.loudness = loud::Loudness::default();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            self.loudness_at_eos();
        }
        self.parent_sink_event(event)
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
