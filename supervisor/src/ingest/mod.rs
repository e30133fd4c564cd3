//! Input pipelines: one per source, isolated from the channel.
//!
//! ```text
//! source → demux/decode → normalize (rate, deinterlace, scale with borders,
//! convert; audio convert/resample/remix) → appsink ══ bridge ══► appsrc in
//! the channel pipeline
//! ```
//!
//! Closed captions leave the frames before the normalizer and are paced
//! back on after it, in the bridge (`captions`).
//!
//! Every input leaves here with the channel's exact caps, so the switch
//! never sees a format change. A source without audio (or video) gets a
//! synthetic stream (silence, black) that does not count as the input
//! being alive.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use gst::glib;
use gst::prelude::*;

use crate::config::{AudioFormat, AudioTrack, Captions, TrackSource, VideoFormat};
use crate::element::make;
use crate::uri::{InputKind, Slate, TestSource};

/// A gap longer than this in a source is passed on as a gap (the switch
/// judges it), not filled with repeated frames by videorate.
pub(super) const MAX_DUPLICATION: Duration = Duration::from_millis(250);

pub fn video_caps(v: &VideoFormat) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", v.width as i32)
        .field("height", v.height as i32)
        .field(
            "framerate",
            gst::Fraction::new(v.framerate.0 as i32, v.framerate.1 as i32),
        )
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("interlace-mode", "progressive")
        .build()
}

pub fn audio_caps(a: &AudioFormat) -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", a.rate as i32)
        .field("channels", a.channels as i32)
        .build()
}

mod bridge;
mod captions;
mod cues;
mod multicast;
mod sources;
mod tracks;

use bridge::{bridge, Media};
pub use bridge::{Bridge, Ingest, InputFault, InputStats};
pub use cues::{input_time, SCTE35_MESSAGE};
pub use tracks::TRACKS_MESSAGE;

/// What an input carries besides one picture and one sound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carry {
    pub captions: Captions,
    /// Its TS's SCTE-35 cues go to the channel (`pass_scte35`).
    pub scte35: bool,
    /// Its index in the channel (its frames say it, for the cues).
    pub index: u32,
}
use sources::*;

/// Builds the pipeline for one input. `name` names the pipeline in logs
/// (`channel.input.id`).
#[allow(clippy::too_many_arguments)]
pub fn build(
    name: &str,
    kind: &InputKind,
    video: &VideoFormat,
    audio: &[AudioTrack],
    map: &std::collections::BTreeMap<String, TrackSource>,
    target: &Bridge,
    stats: &Arc<InputStats>,
    carry: Carry,
) -> anyhow::Result<Ingest> {
    let pipeline = gst::Pipeline::with_name(name);
    // Every pipeline of the process on the same monotonic clock.
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    let paced = matches!(kind, InputKind::Uri { paced: true, .. });
    let (vin, vsink) = video_normalizer(&pipeline, video, paced)?;
    let mut ains = Vec::new();
    for (k, (t, to)) in audio.iter().zip(&target.audio).enumerate() {
        let (ain, asink) = audio_normalizer(&pipeline, &t.format, paced, k)?;
        let media = if k == 0 {
            Media::Audio
        } else {
            Media::Track(k)
        };
        bridge(
            &asink,
            to.clone(),
            stats.clone(),
            media,
            bridge::Extras::default(),
        );
        ains.push(ain);
    }
    let plan = tracks::Plan::new(audio, map);
    let cc = captions::take_off(&vin, video.framerate, carry.captions);
    let mark = carry.scte35.then(|| cues::input_time_caps(carry.index));
    if carry.scte35 {
        cues::forward_events(&vsink);
    }
    let v = bridge::Extras { captions: cc, mark };
    bridge(&vsink, target.video.clone(), stats.clone(), Media::Video, v);
    let mut looped = false;
    let mut feed = None;
    match kind {
        InputKind::Uri {
            uri,
            paced,
            looped: l,
            udp,
            ..
        } => {
            looped = *l;
            let dec = if crate::uri::srt_listener(uri) {
                let (src, dec) = fed_decoder(&pipeline, stats)?;
                feed = Some(src);
                dec
            } else {
                let udp = udp.as_ref().map(multicast::UdpSetup::new).transpose()?;
                uri_decoder(&pipeline, uri, stats, udp)?
            };
            if carry.scte35 {
                cues::demux_events(&dec);
            }
            decoded(&pipeline, &dec, None, &vin, &ains, &plan, !paced, stats)?;
        }
        InputKind::Test(t) => test_source(&pipeline, t, video, &vin, &ains)?,
        InputKind::Slate(Slate::Colour { argb, text }) => {
            let t = TestSource {
                pattern: "solid-color".into(),
                label: text.clone(),
                tone: 0.0,
                level: crate::uri::DEFAULT_TONE_LEVEL,
                stall: None,
            };
            test_source(&pipeline, &t, video, &vin, &ains)?;
            if let Some(src) = pipeline.by_name("vsrc") {
                src.set_property("foreground-color", *argb);
            }
            if let Some(o) = pipeline.by_name("label") {
                o.set_property_from_str("valignment", "center");
                o.set_property_from_str("halignment", "center");
            }
        }
        InputKind::Slate(Slate::Image { path, text }) => {
            // A still picture made live: imagefreeze repeats it forever.
            let freeze = make("imagefreeze", None)?;
            freeze.set_property("is-live", true);
            let overlay = text_overlay(text.as_deref(), "center")?;
            pipeline.add_many([&freeze, &overlay])?;
            gst::Element::link_many([&freeze, &overlay, &vin])?;
            let uri = glib::filename_to_uri(path, None)
                .map_err(|e| anyhow!("slate image {path}: {e}"))?;
            let dec = uri_decoder(&pipeline, &uri, stats, None)?;
            // A still picture has no sound: silence on every track, and
            // no alarm for it (a slate is never judged).
            let quiet = tracks::Plan {
                report: false,
                ..plan.clone()
            };
            decoded(
                &pipeline,
                &dec,
                Some(&freeze),
                &vin,
                &ains,
                &quiet,
                true,
                stats,
            )?;
        }
    }
    Ok(Ingest {
        pipeline,
        looped,
        feed,
    })
}
