//! The in-band health event: how an element upstream of `nonstopswitch`
//! (such as `nonstopwatchdog`) tells it that an input is unusable although
//! data still flows (black, frozen, silent).
//!
//! A custom *sticky* downstream event named `nonstop-health` with fields
//! `healthy` (boolean) and `alarms` (string, the raised alarms joined with
//! `+`, empty when healthy). Sticky, so a pad linked later or a switch that
//! restarts learns the current state; serialized, so it applies from the
//! next buffer on. Any element may send it.

pub const HEALTH_EVENT: &str = "nonstop-health";

pub fn health_event(healthy: bool, alarms: &str) -> gst::Event {
    let s = gst::Structure::builder(HEALTH_EVENT)
        .field("healthy", healthy)
        .field("alarms", alarms)
        .build();
    gst::event::CustomDownstreamSticky::new(s)
}

/// `Some(healthy)` if `event` is a health event.
pub fn parse_health(event: &gst::EventRef) -> Option<bool> {
    let s = event.structure()?;
    if event.type_() != gst::EventType::CustomDownstreamSticky || s.name() != HEALTH_EVENT {
        return None;
    }
    s.get::<bool>("healthy").ok()
}
