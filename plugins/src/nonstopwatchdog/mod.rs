//! `nonstopwatchdog`: content-aware input health. Passes data through
//! untouched and raises alarms when the input stalls, the picture freezes
//! or goes black, or the sound goes silent, too loud, too quiet, peaks
//! over its limit or jumps; optionally tells a downstream `nonstopswitch`
//! to treat the input as failed (see crate::health). It also meters the
//! loudness (EBU R128) and posts it.

use gst::glib;
use gst::prelude::*;

mod analysis;
mod imp;
mod loudness;

glib::wrapper! {
    pub struct NonstopWatchdog(ObjectSubclass<imp::NonstopWatchdog>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// The alarms, for `fail-on` and `alarms`.
#[glib::flags(name = "GstNonstopWatchdogAlarms")]
pub enum Alarms {
    #[flags_value(name = "No buffer for stall-timeout", nick = "stall")]
    STALL = 1 << 0,
    #[flags_value(name = "Picture unchanged for freeze-timeout", nick = "freeze")]
    FREEZE = 1 << 1,
    #[flags_value(name = "Picture black for black-timeout", nick = "black")]
    BLACK = 1 << 2,
    #[flags_value(
        name = "Every channel below silence-threshold for silence-timeout",
        nick = "silence"
    )]
    SILENCE = 1 << 3,
    #[flags_value(
        name = "Short-term loudness above loud-threshold for loud-timeout",
        nick = "loud"
    )]
    LOUD = 1 << 4,
    #[flags_value(
        name = "Short-term loudness below quiet-threshold for quiet-timeout",
        nick = "quiet"
    )]
    QUIET = 1 << 5,
    #[flags_value(
        name = "True peak over true-peak-limit (within the last second) for true-peak-timeout",
        nick = "true-peak"
    )]
    TRUE_PEAK = 1 << 6,
    #[flags_value(
        name = "Short-term loudness moved by jump-threshold within 3 s, for jump-timeout",
        nick = "jump"
    )]
    JUMP = 1 << 7,
    #[flags_value(
        name = "No closed captions on the pictures for captions-timeout",
        nick = "no-captions"
    )]
    NO_CAPTIONS = 1 << 8,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Alarms::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "nonstopwatchdog",
        gst::Rank::NONE,
        NonstopWatchdog::static_type(),
    )
}
