//! One output slot: the group's decision applied, then the frame (or audio
//! chunk) taken from the input on air, repeated, or filled with black /
//! silence (`filler`), faded in after an audio switch (`crossfade`),
//! restamped on the slot grid (`timeline`); pushed once `state` is
//! released. Which thread builds a slot, and when, is `pacing`'s business.

use gst::prelude::*;
use gst::subclass::prelude::*;

use gst::ClockTime;

use super::super::group::{Entry, Local, Published};
use super::super::media::{Format, InputQueue, Taken};
use super::super::PadState;
use super::properties::PROP_ACTIVE_PAD;
use super::{input_message, NonstopSwitch, Settings, State, CAT, MSG_SWITCH};

/// What one output slot produced, pushed and posted after the lock is gone.
#[derive(Default)]
pub(super) struct Output {
    events: Vec<gst::Event>,
    buffer: Option<gst::Buffer>,
    messages: Vec<gst::Message>,
    notify_active: bool,
    eos: bool,
}

impl NonstopSwitch {
    pub(super) fn produce(&self, st: &mut State, settings: &Settings, t: ClockTime) -> Output {
        let obj = self.obj();
        let mut out = Output::default();

        let all_ended = !st.inputs.is_empty() && st.inputs.iter().all(|i| i.local == Local::Eos);
        if all_ended || st.eos_requested {
            gst::info!(
                CAT,
                imp = self,
                "every input ended or EOS was requested: sending EOS"
            );
            st.eos_sent = true;
            out.eos = true;
            return out;
        }

        // 1. Local health, judged at the real time (we may run late).
        let now = self.now(st).unwrap_or(t).max(t);
        let mut published = std::mem::take(&mut st.published);
        published.clear();
        for input in st.inputs.iter_mut() {
            if input.seen_unclocked {
                input.seen_unclocked = false;
                input.local = Local::fresh(t);
            }
            if let Local::Receiving { last_seen, .. } = input.local {
                let stalled =
                    input.flagged.is_some() || now.saturating_sub(last_seen) >= settings.timeout;
                let s = if stalled {
                    PadState::Stalled
                } else {
                    PadState::Healthy
                };
                if input.pad.imp().set_pad_state(s) {
                    gst::info!(CAT, obj = input.pad, "input {}", s.nick());
                    out.messages
                        .push(input_message(&obj, &input.pad.name(), s, Some(now)));
                }
            }
            let local = match (input.flagged, input.local) {
                (Some(since), Local::Receiving { .. }) => Local::Unhealthy { since },
                (_, local) => local,
            };
            published.push((
                input.index,
                Published {
                    priority: input.pad.imp().priority(),
                    local,
                },
            ));
        }

        // 2. The group's decision, applied at this member's slot.
        let (entries, _) = self.group().step(
            self.member,
            t,
            now,
            &published,
            &settings.policy(),
            settings.timeout,
            st.applied,
        );
        st.published = published;
        if let Some(joined) = st.join.take() {
            if joined.is_some() {
                let start = Entry {
                    seq: st.applied,
                    at: t,
                    from: None,
                    to: joined,
                    reason: super::super::Reason::Start,
                    stall_duration: ClockTime::ZERO,
                    from_holdoff: ClockTime::ZERO,
                };
                self.apply_switch(st, &mut out, t, &start);
            }
        }
        for e in entries {
            st.applied = e.seq;
            if st.active != e.to {
                self.apply_switch(st, &mut out, t, &e);
            }
        }

        // 3. Keep queues shallow: inactive inputs hold just their prefill so
        // a switch to them is immediate and adds no latency.
        let slot = st
            .format
            .as_ref()
            .map_or(ClockTime::SECOND, Format::slot_duration);
        let active = st.active;
        for input in st.inputs.iter_mut() {
            if let Some(q) = input.queue.as_mut() {
                let prefill = q.prefill(slot, settings.latency);
                if Some(input.index) != active || q.level() > prefill * 2 {
                    q.trim(prefill);
                }
            }
        }

        // 4. The frame / chunk.
        let Some(is_video) = st.format.as_ref().map(Format::is_video) else {
            return out;
        };
        let taken = active
            .and_then(|a| st.inputs.iter_mut().find(|i| i.index == a))
            .and_then(|i| i.queue.as_mut())
            .map_or(Taken::Empty, InputQueue::take);
        let mut fresh = false;
        let buffer = match taken {
            Taken::Full(b) => {
                fresh = is_video;
                Some(b)
            }
            Taken::Partial(b) => {
                st.frames_black += 1;
                Some(b)
            }
            Taken::Empty => Self::fill(st, settings, active, now, is_video),
        };
        let Some(mut buffer) = buffer else {
            return out;
        };
        Self::fade_in(st, &mut buffer);
        self.stream_events(st, &mut out);
        Self::stamp(st, &mut buffer, t);
        // Keep the frame for repeats only now, after restamping it in place:
        // had we kept the input buffer and pushed a copy, its memory would
        // still be shared when it returned to the upstream pool, and the
        // pool would throw it away and allocate a new one for every frame.
        if fresh {
            st.last_frame = Some(buffer.clone());
        }
        st.frames_out += 1;
        out.buffer = Some(buffer);
        out
    }

    /// The events ahead of a slot's buffer: stream-start, caps and segment
    /// before the first, caps again after they changed.
    fn stream_events(&self, st: &mut State, out: &mut Output) {
        let Some(format) = st.format.as_ref() else {
            return;
        };
        if !st.stream_started {
            st.stream_started = true;
            // The output is a new stream of its own, not any input's.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let stream_id = format!(
                "nonstopswitch/{:x}-{:x}-{nanos:x}",
                std::process::id(),
                self.member
            );
            out.events.push(
                gst::event::StreamStart::builder(&stream_id)
                    .group_id(gst::GroupId::next())
                    .build(),
            );
            st.caps_pending = true;
            out.events.push(gst::event::Caps::new(&format.caps));
            out.events.push(gst::event::Segment::new(
                &gst::FormattedSegment::<ClockTime>::new(),
            ));
            st.caps_pending = false;
            st.discont = true;
        } else if st.caps_pending {
            st.caps_pending = false;
            out.events.push(gst::event::Caps::new(&format.caps));
        }
    }

    fn apply_switch(&self, st: &mut State, out: &mut Output, t: ClockTime, e: &Entry) {
        let (to, reason) = (e.to, e.reason);
        let from = st.active;
        let from_name = st.active_name.take();
        let to_name = st.pad_name(to);
        st.active_name = to_name.clone();
        gst::info!(
            CAT,
            imp = self,
            "switch {from_name:?} -> {to_name:?} at {t} ({})",
            reason.as_str()
        );
        Self::start_fade(st, from);
        st.active = to;
        st.switches += 1;
        st.lost_since = if to.is_none() { Some(t) } else { None };
        let s = gst::Structure::builder(MSG_SWITCH)
            .field("from", from_name)
            .field("to", to_name)
            .field("reason", reason.as_str())
            .field("running-time", t.nseconds())
            .field("stall-duration", e.stall_duration.nseconds())
            .field("return-holdoff", e.from_holdoff.nseconds())
            .build();
        out.messages
            .push(gst::message::Element::builder(s).src(&*self.obj()).build());
        out.notify_active = true;
    }

    /// Posts and pushes what `produce` built. Returns false when the output
    /// stopped (EOS sent, downstream flushing or failed). Only the src task
    /// pauses itself here: pausing it from another thread waits for the
    /// task's iteration, which may be waiting for this thread's push lock.
    pub(super) fn push_output(&self, out: Output, from_task: bool) -> bool {
        let stop = || {
            if from_task {
                let _ = self.src_pad.pause_task();
            }
        };
        let obj = self.obj();
        for m in out.messages {
            let _ = obj.post_message(m);
        }
        if out.notify_active {
            obj.notify(PROP_ACTIVE_PAD);
        }
        for e in out.events {
            self.src_pad.push_event(e);
        }
        if out.eos {
            self.src_pad.push_event(gst::event::Eos::new());
            stop();
            return false;
        }
        let Some(buffer) = out.buffer else {
            return true;
        };
        match self.src_pad.push(buffer) {
            Ok(_) | Err(gst::FlowError::NotLinked) => true,
            Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {
                gst::debug!(CAT, imp = self, "downstream stopped us");
                stop();
                false
            }
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Output stopped: downstream returned {err:?}")
                );
                stop();
                false
            }
        }
    }
}
