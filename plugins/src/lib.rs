//! nonstop: GStreamer elements that keep live channels on air.
//!
//! - `nonstopswitch`: priority input switch whose output never stops.
//! - `nonstopwatchdog`: stall, frozen picture, black and silence detection.
//! - `captions`: closed captions on frames, taken off and paced back on.

use gst::glib;

pub mod captions;
pub mod health;
pub mod nonstopswitch;
pub mod nonstopwatchdog;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    nonstopswitch::register(plugin)?;
    nonstopwatchdog::register(plugin)
}

gst::plugin_define!(
    nonstop,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
