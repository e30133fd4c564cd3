//! The src pad's side: the latency it adds (a slot and `latency`) and its
//! caps, the events it takes from downstream (reconfigure; no seek, no QoS),
//! and its deactivation, which stops the src task.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::media::Format;
use super::{NonstopSwitch, CAT};

impl NonstopSwitch {
    pub(super) fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Latency(q) => {
                let mut upstream = ClockTime::ZERO;
                for sink in self.obj().sink_pads() {
                    let mut uq = gst::query::Latency::new();
                    if sink.peer_query(&mut uq) {
                        let (_live, min, _max) = uq.result();
                        upstream = upstream.max(min);
                    }
                }
                let slot = self
                    .lock_state()
                    .format
                    .as_ref()
                    .map_or(ClockTime::ZERO, Format::slot_duration);
                let ours = slot + self.settings().latency;
                gst::debug!(
                    CAT,
                    imp = self,
                    "latency: upstream {upstream} + ours {ours}"
                );
                q.set(true, upstream + ours, ClockTime::NONE);
                true
            }
            QueryViewMut::Caps(q) => {
                let fixed = self.lock_state().format.as_ref().map(|f| f.caps.clone());
                let caps = fixed.unwrap_or_else(|| pad.pad_template_caps());
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    pub(super) fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Reconfigure(_) => {
                self.lock_state().caps_pending = true;
                for sink in self.obj().sink_pads() {
                    sink.push_event(event.clone());
                }
                true
            }
            // A live switch cannot seek, and QoS must not throttle the inputs.
            EventView::Seek(_) => false,
            EventView::Qos(_) => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    pub(super) fn src_activatemode(
        &self,
        pad: &gst::Pad,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if active {
            self.lock_state().flushing = false;
            return Ok(());
        }
        {
            let mut st = self.lock_state();
            st.flushing = true;
            if let Some(id) = st.clock_id.take() {
                id.unschedule();
            }
            Self::wake_task(&mut st);
        }
        self.cond.notify_all();
        pad.stop_task()
            .map_err(|e| gst::loggable_error!(CAT, "cannot stop task: {e}"))
    }
}
