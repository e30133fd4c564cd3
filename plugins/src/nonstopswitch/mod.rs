//! `nonstopswitch`: a priority input switch whose output never stops.
//!
//! Sink pads queue the media of their input; the output gets exactly one
//! frame (or 10 ms audio chunk) per period from the input on air, repeating
//! the last frame, then black / silence, when there is nothing to take. The
//! input on air pushes its slots from its own thread; a task on the src pad,
//! paced by the pipeline clock, sends the slots it does not. See
//! docs/elements.md.

use gst::glib;
use gst::prelude::*;

mod decide;
mod group;
mod imp;
mod media;
mod pacer;
mod sinkpad;

pub use decide::Reason;

glib::wrapper! {
    pub struct NonstopSwitch(ObjectSubclass<imp::NonstopSwitch>)
        @extends gst::Element, gst::Object, @implements gst::ChildProxy;
}

glib::wrapper! {
    pub struct NonstopSwitchSinkPad(ObjectSubclass<sinkpad::NonstopSwitchSinkPad>)
        @extends gst::Pad, gst::Object;
}

/// `mode` property: who chooses the input on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstNonstopSwitchMode")]
pub enum SwitchMode {
    /// Highest-priority healthy input, with hold-off before returning.
    #[default]
    #[enum_value(name = "Auto: best healthy input by priority", nick = "auto")]
    Auto,
    /// The input chosen with `active-pad`.
    #[enum_value(name = "Manual: the input set with active-pad", nick = "manual")]
    Manual,
}

/// Sink pad `state` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstNonstopSwitchPadState")]
pub enum PadState {
    #[default]
    #[enum_value(name = "Waiting: no data yet", nick = "waiting")]
    Waiting,
    #[enum_value(name = "Healthy: data flowing", nick = "healthy")]
    Healthy,
    #[enum_value(name = "Stalled: no data for longer than timeout", nick = "stalled")]
    Stalled,
    #[enum_value(name = "EOS: the input ended", nick = "eos")]
    Eos,
}

impl PadState {
    pub fn nick(self) -> &'static str {
        match self {
            PadState::Waiting => "waiting",
            PadState::Healthy => "healthy",
            PadState::Stalled => "stalled",
            PadState::Eos => "eos",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    SwitchMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    PadState::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    NonstopSwitchSinkPad::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "nonstopswitch",
        gst::Rank::NONE,
        NonstopSwitch::static_type(),
    )
}
