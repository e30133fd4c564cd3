//! Making GStreamer elements: one message for a missing one, wherever a
//! pipeline is built.

use anyhow::Context;

/// A new element of `factory`, named `name` if given.
pub fn make(factory: &str, name: Option<&str>) -> anyhow::Result<gst::Element> {
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(n);
    }
    b.build().with_context(|| {
        format!("GStreamer element \"{factory}\" is missing; is its plugin installed?")
    })
}
