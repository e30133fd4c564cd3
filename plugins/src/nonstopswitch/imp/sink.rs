//! The sink pads' side: a buffer queued on its input, whose health is
//! judged on arrival (the clean window), then the slots it lets the input on
//! air send (`pacing`) and its hold (`hold`); the caps, EOS, flush and
//! in-band health events; the caps queries.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst::ClockTime;

use super::super::group::{Arrival, Local};
use super::super::media::Format;
use super::super::{NonstopSwitchSinkPad, PadState};
use super::{input_message, NonstopSwitch, Settings, CAT, MSG_INPUT};

impl NonstopSwitch {
    pub(super) fn sink_chain(
        &self,
        pad: &NonstopSwitchSinkPad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings();
        let Settings {
            latency,
            timeout,
            clean_gap,
            ..
        } = settings;
        let mut st = self.lock_state();
        let now = self.now(&st);
        let slot = st.format.as_ref().map(Format::slot_duration);
        let waiting_for_data = st.timeline.is_none();
        let active = st.active;
        let Some(input) = st.input(pad) else {
            return Err(gst::FlowError::Flushing);
        };
        if input.flushing {
            return Err(gst::FlowError::Flushing);
        }
        let (Some(queue), Some(slot)) = (input.queue.as_mut(), slot) else {
            drop(st);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("{} received data before caps", pad.name())
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let expected = input.last_duration.unwrap_or(slot);
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let (index, duration) = (input.index, buffer.duration());
        input.last_duration = duration;
        queue.push(buffer, now);
        // Bound memory and latency even when nobody consumes (not PLAYING,
        // or an input delivering faster than real time).
        let prefill = queue.prefill(slot, latency);
        if queue.level() > prefill * 2 {
            let dropped = queue.trim(prefill);
            gst::log!(CAT, obj = pad, "queue over limit, dropped {dropped}");
        }
        let mut interruption = None;
        input.local = match now {
            Some(now) => {
                let (local, gap) = input.local.on_buffer(
                    now,
                    &Arrival {
                        timeout,
                        expected,
                        clean_gap,
                        discont,
                    },
                );
                // Only an input off air waits on its clean window: say so,
                // it is why a backup stays on air.
                if active != Some(input.index) {
                    interruption = gap;
                }
                local
            }
            None => match input.local {
                local @ Local::Receiving { .. } => local,
                _ => {
                    input.seen_unclocked = true;
                    Local::fresh(ClockTime::ZERO)
                }
            },
        };
        let flagged = input.flagged.is_some();
        let imp = pad.imp();
        imp.count_frame(now);
        let changed = !flagged && imp.set_pad_state(PadState::Healthy);

        // Said once `state` is released, before any slot this buffer sends.
        let announce = || {
            if waiting_for_data {
                self.cond.notify_all();
            }
            if changed {
                gst::debug!(CAT, obj = pad, "input healthy");
                let _ = self.obj().post_message(input_message(
                    &self.obj(),
                    &pad.name(),
                    PadState::Healthy,
                    now,
                ));
            }
            if let Some(gap) = interruption {
                gst::debug!(
                    CAT,
                    obj = pad,
                    "interrupted for {gap}: clean window restarts"
                );
                let s = gst::Structure::builder(MSG_INPUT)
                    .field("pad", pad.name().as_str())
                    .field("state", "interrupted")
                    .field("running-time", now.map_or(u64::MAX, ClockTime::nseconds))
                    .field("gap", gap.nseconds())
                    .build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
            }
        };
        let ticket = Self::hold_ticket(&st, &settings, index, duration, slot);
        self.chain_output(pad, st, &settings, announce);
        if let Some(ticket) = ticket {
            self.hold(index, ticket, slot);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    pub(super) fn sink_event(&self, pad: &NonstopSwitchSinkPad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => self.set_input_caps(pad, c.caps_owned()),
            EventView::Eos(_) => {
                let mut st = self.lock_state();
                let now = self.now(&st);
                if let Some(input) = st.input(pad) {
                    input.local = Local::Eos;
                }
                let changed = pad.imp().set_pad_state(PadState::Eos);
                drop(st);
                self.cond.notify_all();
                if changed {
                    gst::info!(CAT, obj = pad, "input reached EOS: lost");
                    let _ = self.obj().post_message(input_message(
                        &self.obj(),
                        &pad.name(),
                        PadState::Eos,
                        now,
                    ));
                }
                true
            }
            EventView::CustomDownstreamSticky(_) => {
                if let Some(healthy) = crate::health::parse_health(&event) {
                    self.set_flagged(pad, !healthy);
                }
                true
            }
            EventView::FlushStart(_) => {
                let mut st = self.lock_state();
                if let Some(input) = st.input(pad) {
                    input.flushing = true;
                    if let Some(q) = input.queue.as_mut() {
                        q.clear();
                    }
                }
                true
            }
            EventView::FlushStop(_) => {
                let mut st = self.lock_state();
                if let Some(input) = st.input(pad) {
                    input.flushing = false;
                    if input.local == Local::Eos {
                        input.local = Local::Waiting;
                        pad.imp().set_pad_state(PadState::Waiting);
                    }
                }
                true
            }
            // Inputs are re-timed and merged into one stream: their
            // stream-start, segment, tags and gaps stay here.
            _ => true,
        }
    }

    /// An element upstream says the input is (un)usable although data flows.
    fn set_flagged(&self, pad: &NonstopSwitchSinkPad, unhealthy: bool) {
        let mut st = self.lock_state();
        let now = self.now(&st).unwrap_or(ClockTime::ZERO);
        let Some(input) = st.input(pad) else {
            return;
        };
        gst::info!(
            CAT,
            obj = pad,
            "input flagged {}",
            if unhealthy { "unhealthy" } else { "healthy" }
        );
        if unhealthy {
            input.flagged.get_or_insert(now);
        } else if input.flagged.take().is_some() {
            // Usable again from now: return-after counts from here.
            input.local = input.local.restarted(now);
        }
    }

    fn set_input_caps(&self, pad: &NonstopSwitchSinkPad, caps: gst::Caps) -> bool {
        let format = match Format::from_caps(&caps) {
            Ok(f) => f,
            Err(msg) => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Cannot accept caps on {}: {msg}", pad.name()),
                    details: gst::Structure::builder("nonstop-caps-error")
                        .field("pad", pad.name().as_str())
                        .field("caps", caps.to_string())
                        .build()
                );
                return false;
            }
        };

        let mut st = self.lock_state();
        let conflict = st
            .inputs
            .iter()
            .filter(|i| &i.pad != pad && i.local != Local::Eos)
            .find_map(|i| {
                let c = i.caps.as_ref()?;
                let diff = Format::from_caps(c).ok()?.differences(&format);
                (!diff.is_empty()).then(|| (i.pad.name(), c.clone(), diff.join(", ")))
            });
        if let Some((other, other_caps, diff)) = conflict {
            drop(st);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                (
                    "Caps mismatch on {}: it offers {caps} but {other} carries {other_caps};                      they differ in {diff}. Every input of nonstopswitch must have the same                      format, size, framerate and pixel aspect ratio (audio: format, rate,                      channels): normalize each input (videoconvert ! videoscale ! videorate !                      capsfilter, or audioconvert ! audioresample ! capsfilter)",
                    pad.name()
                ),
                details: gst::Structure::builder("nonstop-caps-error")
                    .field("pad", pad.name().as_str())
                    .field("caps", caps.to_string())
                    .field("other-pad", other.as_str())
                    .field("other-caps", other_caps.to_string())
                    .build()
            );
            return false;
        }

        let unchanged = st
            .format
            .as_ref()
            .is_some_and(|f| f.differences(&format).is_empty());
        let now = self.now(&st);
        let Some(input) = st.input(pad) else {
            return false;
        };
        if input.caps.as_ref().is_some_and(|c| *c == caps) && input.queue.is_some() {
            return true;
        }
        let had_caps = input.caps.is_some();
        input.caps = Some(caps.clone());
        input.queue = Some(format.new_queue());
        if let (true, Local::Receiving { last_seen, .. }) = (had_caps, input.local) {
            // New caps are an interruption: the clean window starts over.
            input.local = input.local.restarted(now.unwrap_or(last_seen));
        }
        if unchanged {
            return true;
        }

        gst::info!(CAT, imp = self, "output caps {caps}");
        let old_rate = st.format.as_ref().map(Format::grid_rate);
        st.filler = self.make_filler(&format);
        st.last_frame = None;
        st.caps_pending = true;
        // A new rate re-anchors the slot grid at the next slot.
        if old_rate.is_some_and(|r| r != format.grid_rate()) {
            self.reanchor(&mut st, &format);
        }
        st.format = Some(format);
        true
    }

    pub(super) fn sink_query(&self, pad: &NonstopSwitchSinkPad, query: &mut gst::QueryRef) -> bool {
        use gst::QueryViewMut;
        match query.view_mut() {
            QueryViewMut::Caps(q) => {
                let fixed = self.lock_state().format.as_ref().map(|f| f.caps.clone());
                let caps = match fixed {
                    Some(c) => c,
                    None => {
                        let templ = pad.pad_template_caps();
                        let peer = self.src_pad.peer_query_caps(Some(&templ));
                        peer.intersect(&templ)
                    }
                };
                let caps = match q.filter() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            QueryViewMut::AcceptCaps(q) => {
                // Everything is let through to the caps event, which checks
                // it and can say exactly what is wrong; the caps query above
                // already steers negotiation to what works.
                q.set_result(true);
                true
            }
            QueryViewMut::Allocation(_) => false,
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}
