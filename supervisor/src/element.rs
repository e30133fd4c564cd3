//! Making GStreamer elements: one message for a missing one, wherever a
//! pipeline is built.

use anyhow::Context;
use gst::prelude::*;

/// A new element of `factory`, named `name` if given.
/// The name of the element of audio track `track`: `base` for the first
/// (the name a channel with one track always had), `base_k` for the others.
pub fn track_name(base: &str, track: usize) -> String {
    match track {
        0 => base.to_owned(),
        k => format!("{base}_{k}"),
    }
}

pub fn make(factory: &str, name: Option<&str>) -> anyhow::Result<gst::Element> {
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(n);
    }
    b.build().with_context(|| {
        format!("GStreamer element \"{factory}\" is missing; is its plugin installed?")
    })
}

/// An appsrc in time format holding at most `max_buffers` buffers, that
/// drops its oldest rather than block the thread feeding it: a stalled
/// consumer (encoder, destination, a burst beyond the switch's appetite)
/// costs its own frames, never the producer.
pub fn leaky_appsrc(
    name: &str,
    caps: Option<&gst::Caps>,
    live: bool,
    max_buffers: u64,
) -> gst_app::AppSrc {
    let mut b = gst_app::AppSrc::builder()
        .name(name)
        .format(gst::Format::Time)
        .is_live(live)
        .max_buffers(max_buffers)
        .max_bytes(0)
        .max_time(gst::ClockTime::ZERO);
    if let Some(caps) = caps {
        b = b.caps(caps);
    }
    let src = b.build();
    src.set_property_from_str("leaky-type", "downstream");
    src
}
