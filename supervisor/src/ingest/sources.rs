//! The pieces of an input pipeline: sources and decoders by kind of
//! input, synthetic streams for what a source lacks, the normalizers that
//! give every input the channel's caps.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use gst::prelude::*;

use gst_app::{AppSink, AppSrc};

use super::{audio_caps, video_caps, InputStats, Media, MAX_DUPLICATION};
use crate::config::{AudioFormat, VideoFormat};
use crate::element::make;
use crate::uri::TestSource;

/// Adds `elements` to `bin` and links them in a chain.
pub(super) fn chain(bin: &gst::Pipeline, elements: &[gst::Element]) -> anyhow::Result<()> {
    bin.add_many(elements)?;
    gst::Element::link_many(elements).context("linking the normalizer")?;
    Ok(())
}

/// videorate → deinterlace → scale (keeping the picture's aspect ratio with
/// borders) → convert → the channel's caps → appsink. Returns its first element.
pub(super) fn video_normalizer(
    pipeline: &gst::Pipeline,
    v: &VideoFormat,
    paced: bool,
) -> anyhow::Result<(gst::Element, AppSink)> {
    let first = make("videoconvert", Some("vin"))?;
    let deinterlace = make("deinterlace", None)?;
    deinterlace.set_property_from_str("mode", "auto");
    let rate = make("videorate", None)?;
    rate.set_property("skip-to-first", true);
    rate.set_property("max-duplication-time", MAX_DUPLICATION.as_nanos() as u64);
    let rate_caps = make("capsfilter", None)?;
    rate_caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field(
                "framerate",
                gst::Fraction::new(v.framerate.0 as i32, v.framerate.1 as i32),
            )
            .build(),
    );
    let scale = make("videoscale", None)?;
    scale.set_property("add-borders", true);
    let convert = make("videoconvert", None)?;
    let caps = make("capsfilter", None)?;
    caps.set_property("caps", video_caps(v));
    let sink = appsink("vsink", paced)?;
    chain(
        pipeline,
        &[
            first.clone(),
            deinterlace,
            rate,
            rate_caps,
            scale,
            convert,
            caps,
            sink.clone().upcast(),
        ],
    )?;
    Ok((first, sink))
}

/// The normalizer of audio track `track`: its first element is `ain`
/// (`ain_1`, … for the others), its appsink `asink` (`asink_1`, …).
pub(super) fn audio_normalizer(
    pipeline: &gst::Pipeline,
    a: &AudioFormat,
    paced: bool,
    track: usize,
) -> anyhow::Result<(gst::Element, AppSink)> {
    let name = |base: &str| crate::element::track_name(base, track);
    let first = make("audioconvert", Some(&name("ain")))?;
    let resample = make("audioresample", None)?;
    let convert = make("audioconvert", None)?;
    let caps = make("capsfilter", None)?;
    caps.set_property("caps", audio_caps(a));
    let sink = appsink(&name("asink"), paced)?;
    chain(
        pipeline,
        &[
            first.clone(),
            resample,
            convert,
            caps,
            sink.clone().upcast(),
        ],
    )?;
    Ok((first, sink))
}

pub(super) fn appsink(name: &str, paced: bool) -> anyhow::Result<AppSink> {
    let sink = AppSink::builder()
        .name(name)
        .sync(paced)
        .enable_last_sample(false)
        .build();
    sink.set_property("qos", false);
    Ok(sink)
}

pub(super) fn text_overlay(text: Option<&str>, valign: &str) -> anyhow::Result<gst::Element> {
    let o = make("textoverlay", Some("label"))?;
    o.set_property("text", text.unwrap_or_default());
    o.set_property("font-desc", "Sans Bold 28");
    o.set_property_from_str("valignment", valign);
    o.set_property_from_str("halignment", "left");
    o.set_property("shaded-background", true);
    Ok(o)
}

/// Counts the bytes a source element delivers (an atomic per buffer).
pub(super) fn count_source_bytes(pad: &gst::Pad, stats: &Arc<InputStats>) {
    let stats = stats.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let n = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => b.size(),
                Some(gst::PadProbeData::BufferList(l)) => l.calculate_size(),
                _ => 0,
            };
            stats.source_bytes.fetch_add(n as u64, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
}

/// uridecodebin for `uri`, in the pipeline, counting what its source
/// receives; `udp`: a udp:// input's options for its udpsrc.
pub(super) fn uri_decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    stats: &Arc<InputStats>,
    udp: Option<super::multicast::UdpSetup>,
) -> anyhow::Result<gst::Element> {
    let dec = make("uridecodebin", Some("src"))?;
    dec.set_property("uri", uri);
    let stats = stats.clone();
    dec.connect("source-setup", false, move |args| {
        let source = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
        if let Some(u) = &udp {
            u.apply(&source);
        }
        count_source_bytes(&source.static_pad("src")?, &stats);
        None
    });
    pipeline.add(&dec)?;
    Ok(dec)
}

/// appsrc → decodebin, for a stream nonstopd receives itself (an SRT
/// listener's caller). The appsrc is live and timestamps on arrival, as
/// srtsrc does; it drops the oldest data rather than block the receiving
/// thread if the pipeline falls behind.
pub(super) fn fed_decoder(
    pipeline: &gst::Pipeline,
    stats: &Arc<InputStats>,
) -> anyhow::Result<(AppSrc, gst::Element)> {
    let src = AppSrc::builder()
        .name("feed")
        .is_live(true)
        .do_timestamp(true)
        .format(gst::Format::Time)
        .max_bytes(8 << 20)
        .block(false)
        .build();
    src.set_property_from_str("leaky-type", "downstream");
    let dec = make("decodebin", Some("src"))?;
    pipeline.add_many([src.upcast_ref::<gst::Element>(), &dec])?;
    src.link(&dec)?;
    if let Some(pad) = src.static_pad("src") {
        count_source_bytes(&pad, stats);
    }
    Ok((src, dec))
}

/// A decoder (uridecodebin, decodebin) with its video pad linked to the
/// normalizer as it appears, and its audio pads collected; at
/// no-more-pads the audio streams go to the tracks by `plan` and a missing
/// stream is made synthetic. `video_to` overrides where video goes (the
/// slate's imagefreeze).
#[allow(clippy::too_many_arguments)]
pub(super) fn decoded(
    pipeline: &gst::Pipeline,
    dec: &gst::Element,
    video_to: Option<&gst::Element>,
    vin: &gst::Element,
    ains: &[gst::Element],
    plan: &super::tracks::Plan,
    live: bool,
    stats: &Arc<InputStats>,
) -> anyhow::Result<()> {
    let vpad = video_to
        .unwrap_or(vin)
        .static_pad("sink")
        .ok_or_else(|| anyhow!("normalizer without a sink pad"))?;
    let apads: Vec<gst::Pad> = ains
        .iter()
        .map(|a| a.static_pad("sink"))
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("normalizer without a sink pad"))?;
    // The decoder's audio pads with their languages, until no-more-pads.
    let audio: Arc<Mutex<super::tracks::Streams>> = Arc::default();
    {
        let (vpad, audio) = (vpad.clone(), audio.clone());
        dec.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let Some(kind) = caps.structure(0).map(|s| s.name().to_string()) else {
                return;
            };
            if kind.starts_with("video/") {
                // A second video track is left unlinked (ignored).
                if !vpad.is_linked() {
                    let _ = pad.link(&vpad);
                }
            } else if kind.starts_with("audio/") {
                let lang = super::tracks::pad_language(pad);
                audio
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((pad.clone(), lang));
            }
        });
    }
    let weak = pipeline.downgrade();
    let stats = stats.clone();
    let plan = plan.clone();
    dec.connect_no_more_pads(move |dec| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let mut found = std::mem::take(&mut *audio.lock().unwrap_or_else(|e| e.into_inner()));
        super::tracks::sort_streams(&mut found);
        let langs: Vec<Option<String>> = found.iter().map(|(_, l)| l.clone()).collect();
        let assigned = plan.assign(&langs);
        let mut missing = Vec::new();
        for (k, (apad, a)) in apads.iter().zip(&assigned).enumerate() {
            if apad.is_linked() {
                continue;
            }
            // Streams not taken by a track stay unlinked (ignored).
            let linked = a.is_some_and(|s| found[s].0.link(apad).is_ok());
            if !linked {
                stats.set_audio_synthetic(k);
                let _ = synthetic(&pipeline, Media::Audio, live, apad);
                if found.is_empty() && plan.tracks.len() == 1 {
                    continue; // a plain channel, a source without sound
                }
                missing.push(k.to_string());
            }
        }
        if plan.report && (plan.tracks.len() > 1 || !missing.is_empty()) {
            let s = gst::Structure::builder(super::tracks::TRACKS_MESSAGE)
                .field("missing", missing.join(","))
                .field("streams", found.len() as u32)
                .field("mapping", super::tracks::describe(&plan, &langs, &assigned))
                .build();
            let _ = dec.post_message(gst::message::Element::builder(s).src(dec).build());
        }
        if !vpad.is_linked() {
            stats.video_synthetic.store(true, Ordering::Relaxed);
            let _ = synthetic(&pipeline, Media::Video, live, &vpad);
        }
    });
    Ok(())
}

/// Silence or black for a source that lacks the stream.
pub(super) fn synthetic(
    pipeline: &gst::Pipeline,
    media: Media,
    live: bool,
    to: &gst::Pad,
) -> anyhow::Result<()> {
    let src = match media {
        Media::Audio | Media::Track(_) => {
            let s = make("audiotestsrc", None)?;
            s.set_property_from_str("wave", "silence");
            s
        }
        Media::Video => {
            let s = make("videotestsrc", None)?;
            s.set_property_from_str("pattern", "black");
            s
        }
    };
    src.set_property("is-live", live);
    pipeline.add(&src)?;
    src.static_pad("src")
        .ok_or_else(|| anyhow!("test source without a src pad"))?
        .link(to)?;
    src.sync_state_with_parent()?;
    Ok(())
}

/// `test://`: a live pattern with a label and a tone. Generated at the
/// channel's size and rate, so the normalizer passes it through.
pub(super) fn test_source(
    pipeline: &gst::Pipeline,
    t: &TestSource,
    v: &VideoFormat,
    vin: &gst::Element,
    ains: &[gst::Element],
) -> anyhow::Result<()> {
    let vsrc = make("videotestsrc", Some("vsrc"))?;
    vsrc.set_property("is-live", true);
    vsrc.set_property_from_str("pattern", &t.pattern);
    let vcaps = make("capsfilter", None)?;
    vcaps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", v.width as i32)
            .field("height", v.height as i32)
            .field(
                "framerate",
                gst::Fraction::new(v.framerate.0 as i32, v.framerate.1 as i32),
            )
            .build(),
    );
    let overlay = text_overlay(t.label.as_deref(), "top")?;
    pipeline.add_many([&vsrc, &vcaps, &overlay])?;
    gst::Element::link_many([&vsrc, &vcaps, &overlay, vin])?;
    let mut srcs = vec![vsrc];
    // The same tone on every audio track.
    for (k, ain) in ains.iter().enumerate() {
        let asrc = make("audiotestsrc", Some(&crate::element::track_name("asrc", k)))?;
        asrc.set_property("is-live", true);
        if t.tone > 0.0 {
            asrc.set_property("freq", t.tone);
            asrc.set_property("volume", 10f64.powf(t.level / 20.0));
        } else {
            asrc.set_property_from_str("wave", "silence");
        }
        pipeline.add(&asrc)?;
        asrc.link(ain)?;
        srcs.push(asrc);
    }
    if let Some((every, dur)) = t.stall {
        for src in &srcs {
            stall_schedule(src, every, dur);
        }
    }
    Ok(())
}

/// `stall=EVERY/FOR`: drop everything during the last FOR of every EVERY,
/// on the monotonic clock, so the schedule survives the input's restarts.
pub(super) fn stall_schedule(src: &gst::Element, every: Duration, dur: Duration) {
    let Some(pad) = src.static_pad("src") else {
        return;
    };
    let clock = gst::SystemClock::obtain();
    let (every, dur) = (every.as_nanos() as u64, dur.as_nanos() as u64);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let phase = clock.time().nseconds() % every;
        if phase >= every - dur {
            gst::PadProbeReturn::Drop
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}
