//! SCTE-35 cues of an input's TS, for a channel that passes them
//! (`pass_scte35`). tsdemux sends each splice_info_section down its pads
//! as an event with the splice times in the input's running time; at the
//! normalizer's end it becomes a bus message for the channel, which keeps
//! the cues of the input on air and places them on its own timeline. To
//! place them, every video frame carries its input running time (a
//! reference timestamp meta) across the bridge and the switch: the
//! channel reads, at the switch's output, which output PTS a given input
//! time became.

use gst::prelude::*;
use gst_app::AppSink;

/// The bus message of an input's cue: tsdemux's event structure (its
/// `section`, `running-time-map`), renamed.
pub const SCTE35_MESSAGE: &str = "nonstop-scte35";
/// The caps of the reference timestamp a video frame carries: its input
/// (`input`, the index) and its running time there.
pub const INPUT_TIME: &str = "timestamp/x-nonstop-input";

/// Has every tsdemux inside `dec` (uridecodebin, decodebin) send its
/// SCTE-35 sections downstream.
pub(super) fn demux_events(dec: &gst::Element) {
    dec.connect("deep-element-added", false, |args| {
        let el = args.get(2)?.get::<gst::Element>().ok()?;
        if el.factory().is_some_and(|f| f.name() == "tsdemux") {
            el.set_property("send-scte35-events", true);
        }
        None
    });
}

/// Posts each section event reaching `sink` as [`SCTE35_MESSAGE`].
pub(super) fn forward_events(sink: &AppSink) {
    let Some(pad) = sink.static_pad("sink") else {
        return;
    };
    let weak = sink.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(ev) = info.event() else {
            return gst::PadProbeReturn::Ok;
        };
        if ev.type_() != gst::EventType::CustomDownstream {
            return gst::PadProbeReturn::Ok;
        }
        if let (Some(s), Some(sink)) = (ev.structure(), weak.upgrade()) {
            if s.name() == "scte-sit" {
                let mut m = s.to_owned();
                m.set_name(SCTE35_MESSAGE);
                let _ = sink.post_message(gst::message::Element::builder(m).src(&sink).build());
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The caps of input `index`'s reference timestamps.
pub fn input_time_caps(index: u32) -> gst::Caps {
    gst::Caps::builder(INPUT_TIME).field("input", index).build()
}

/// The input and its running time that a frame carries, if it does.
pub fn input_time(buf: &gst::BufferRef) -> Option<(u32, u64)> {
    buf.iter_meta::<gst::ReferenceTimestampMeta>()
        .find_map(|m| {
            let s = m.reference().structure(0)?;
            if s.name() != INPUT_TIME {
                return None;
            }
            Some((s.get::<u32>("input").ok()?, m.timestamp().nseconds()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_says_its_input_and_time() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        assert_eq!(input_time(&buf), None);
        gst::ReferenceTimestampMeta::add(
            buf.get_mut().unwrap(),
            &input_time_caps(2),
            gst::ClockTime::from_mseconds(1500),
            gst::ClockTime::NONE,
        );
        assert_eq!(input_time(&buf), Some((2, 1_500_000_000)));
    }
}
