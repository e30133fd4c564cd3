//! Input pipelines: one per source, isolated from the channel.
//!
//! ```text
//! source → demux/decode → normalize (rate, deinterlace, scale with borders,
//! convert; audio convert/resample/remix) → appsink ══ bridge ══► appsrc in
//! the channel pipeline
//! ```
//!
//! Every input leaves here with the channel's exact caps, so the switch
//! never sees a format change. A source without audio (or video) gets a
//! synthetic stream (silence, black) that does not count as the input
//! being alive.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use gst::glib;
use gst::prelude::*;
use gst_app::{AppSink, AppSinkCallbacks, AppSrc};

use crate::config::{AudioFormat, VideoFormat};
use crate::uri::{InputKind, Slate, TestSource};

/// A gap longer than this in a source is passed on as a gap (the switch
/// judges it), not filled with repeated frames by videorate.
const MAX_DUPLICATION: Duration = Duration::from_millis(250);

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

/// The input's appsrcs in the channel pipeline: where its media goes.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub video: AppSrc,
    pub audio: AppSrc,
}

/// What the input's streaming threads record and the channel reads:
/// atomics only, nothing locked per buffer.
#[derive(Default)]
pub struct InputStats {
    last_video: AtomicU64,
    last_audio: AtomicU64,
    video_synthetic: AtomicBool,
    audio_synthetic: AtomicBool,
    pub buffers: AtomicU64,
    pub bytes: AtomicU64,
    /// Decoded video frames (real ones).
    pub video_frames: AtomicU64,
    /// Bytes the source element received (network or file), before demux.
    pub source_bytes: AtomicU64,
    /// A recent video frame for the status page (kept every 2 s).
    pub thumb: std::sync::Mutex<Option<gst::Sample>>,
    thumb_at: AtomicU64,
    /// The [`InputFault`] a drill puts on this input, as its `u8`: see
    /// [`InputStats::set_fault`]. Acts in the bridge, so the channel sees
    /// exactly what a real fault would show it.
    fault: std::sync::atomic::AtomicU8,
    /// Set by the first real video / audio buffer after a reset.
    first_video: AtomicBool,
    first_audio: AtomicBool,
    /// Called (from the streaming thread) on the first buffer of each
    /// stream: the channel hears at once that the input is receiving, not
    /// at its next tick (it judges on video, which may come second).
    pub on_first: std::sync::Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl InputStats {
    /// Forget the previous pipeline's state before a new one starts.
    pub fn reset(&self) {
        for a in [&self.last_video, &self.last_audio] {
            a.store(0, Ordering::Relaxed);
        }
        for f in [
            &self.video_synthetic,
            &self.audio_synthetic,
            &self.first_video,
            &self.first_audio,
        ] {
            f.store(false, Ordering::Relaxed);
        }
    }

    /// When the source last delivered real media (monotonic ns; 0: never).
    /// Judged on video unless the video is synthetic (an audio-only source).
    pub fn last_data(&self) -> u64 {
        if self.video_synthetic.load(Ordering::Relaxed) {
            self.last_audio.load(Ordering::Relaxed)
        } else {
            self.last_video.load(Ordering::Relaxed)
        }
    }

    pub fn has_synthetic_audio(&self) -> bool {
        self.audio_synthetic.load(Ordering::Relaxed)
    }
}

impl InputStats {
    /// Puts a drill's fault on the input (or takes it off with `None`).
    pub fn set_fault(&self, fault: InputFault) {
        self.fault.store(fault as u8, Ordering::Relaxed);
    }

    /// The fault on the input now; read for every buffer.
    pub fn fault(&self) -> InputFault {
        InputFault::from_u8(self.fault.load(Ordering::Relaxed))
    }
}

/// A fault a drill puts on an input, in its bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InputFault {
    None = 0,
    /// Nothing passes, as in a network stall.
    Stall = 1,
    /// Video frames pass as black.
    Black = 2,
    /// Audio passes as digital silence.
    Silence = 3,
}

impl InputFault {
    fn from_u8(v: u8) -> InputFault {
        match v {
            1 => InputFault::Stall,
            2 => InputFault::Black,
            3 => InputFault::Silence,
            _ => InputFault::None,
        }
    }
}

/// A copy of `buffer` (same size and timing) filled with `fill` per plane:
/// black video (Y 16, chroma 128 for I420) or silence (all zero).
fn blanked(buffer: &gst::Buffer, planes: &[(usize, u8)]) -> Option<gst::Buffer> {
    let mut out = gst::Buffer::with_size(buffer.size()).ok()?;
    {
        let b = out.get_mut()?;
        b.set_pts(buffer.pts());
        b.set_duration(buffer.duration());
        let mut map = b.map_writable().ok()?;
        let data = map.as_mut_slice();
        let mut at = 0;
        for (len, value) in planes {
            let end = (at + len).min(data.len());
            data[at..end].fill(*value);
            at = end;
        }
        data[at..].fill(planes.last().map_or(0, |p| p.1));
    }
    Some(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Video,
    Audio,
}

/// A built (not yet started) input pipeline.
pub struct Ingest {
    pub pipeline: gst::Pipeline,
    /// Seek back to the start at EOS instead of rebuilding.
    pub looped: bool,
    /// Where an SRT listener input's stream goes in (nonstopd holds the
    /// socket: [`crate::srtin`]).
    pub feed: Option<AppSrc>,
}

use crate::element::make;

/// Adds `elements` to `bin` and links them in a chain.
fn chain(bin: &gst::Pipeline, elements: &[gst::Element]) -> anyhow::Result<()> {
    bin.add_many(elements)?;
    gst::Element::link_many(elements).context("linking the normalizer")?;
    Ok(())
}

/// videorate → deinterlace → scale (keeping the picture's aspect ratio with
/// borders) → convert → the channel's caps → appsink. Returns its first element.
fn video_normalizer(
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

fn audio_normalizer(
    pipeline: &gst::Pipeline,
    a: &AudioFormat,
    paced: bool,
) -> anyhow::Result<(gst::Element, AppSink)> {
    let first = make("audioconvert", Some("ain"))?;
    let resample = make("audioresample", None)?;
    let convert = make("audioconvert", None)?;
    let caps = make("capsfilter", None)?;
    caps.set_property("caps", audio_caps(a));
    let sink = appsink("asink", paced)?;
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

fn appsink(name: &str, paced: bool) -> anyhow::Result<AppSink> {
    let sink = AppSink::builder()
        .name(name)
        .sync(paced)
        .enable_last_sample(false)
        .build();
    sink.set_property("qos", false);
    Ok(sink)
}

/// Whether filler (the synthetic stream of a source without audio or
/// video) passes, given when the source last delivered the other stream
/// (monotonic ns; 0: never): only while that is no older than
/// [`MAX_DUPLICATION`], so a source's gaps reach the switch as gaps.
fn filler_due(last_real: u64, now: u64) -> bool {
    last_real > 0 && now.saturating_sub(last_real) <= MAX_DUPLICATION.as_nanos() as u64
}

/// Hands every normalized buffer to the channel's appsrc, stamped with the
/// channel's running time at arrival: the channel judges timing by
/// arrival, and the input's own timestamps mean nothing there.
fn bridge(sink: &AppSink, target: AppSrc, stats: Arc<InputStats>, media: Media) {
    sink.set_callbacks(
        AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(mut buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                match (stats.fault(), media) {
                    (InputFault::Stall, _) => return Ok(gst::FlowSuccess::Ok),
                    (InputFault::Black, Media::Video) => {
                        // I420: a luma plane of 2/3 of the size, then chroma.
                        let luma = buffer.size() * 2 / 3;
                        if let Some(b) =
                            blanked(&buffer, &[(luma, 16), (buffer.size() - luma, 128)])
                        {
                            buffer = b;
                        }
                    }
                    (InputFault::Silence, Media::Audio) => {
                        if let Some(b) = blanked(&buffer, &[(buffer.size(), 0)]) {
                            buffer = b;
                        }
                    }
                    _ => {}
                }
                let (synthetic, other_last) = match media {
                    Media::Video => (&stats.video_synthetic, &stats.last_audio),
                    Media::Audio => (&stats.audio_synthetic, &stats.last_video),
                };
                if synthetic.load(Ordering::Relaxed) {
                    // Filler for the stream a source lacks flows only while
                    // the source delivers the other one: a source with
                    // neither (garbage typefound as subtitles), or whose
                    // decoder made one frame of some garbage, must not
                    // look alive to the switch.
                    let last = other_last.load(Ordering::Relaxed);
                    if !filler_due(last, crate::monotonic_ns()) {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                } else {
                    let now = crate::monotonic_ns().max(1);
                    match media {
                        Media::Video => stats.last_video.store(now, Ordering::Relaxed),
                        Media::Audio => stats.last_audio.store(now, Ordering::Relaxed),
                    }
                    stats.buffers.fetch_add(1, Ordering::Relaxed);
                    if media == Media::Video {
                        stats.video_frames.fetch_add(1, Ordering::Relaxed);
                        // A frame kept for the thumbnail every 2 s: one
                        // reference, no copy, no lock in between.
                        if now.saturating_sub(stats.thumb_at.load(Ordering::Relaxed))
                            >= 2_000_000_000
                        {
                            stats.thumb_at.store(now, Ordering::Relaxed);
                            if let Ok(mut t) = stats.thumb.lock() {
                                *t = Some(sample.clone());
                            }
                        }
                    }
                    let first = match media {
                        Media::Video => &stats.first_video,
                        Media::Audio => &stats.first_audio,
                    };
                    if !first.swap(true, Ordering::AcqRel) {
                        let notify = stats.on_first.lock().ok().and_then(|f| f.clone());
                        if let Some(f) = notify {
                            f();
                        }
                    }
                    stats
                        .bytes
                        .fetch_add(buffer.size() as u64, Ordering::Relaxed);
                }
                // Not playing (channel starting or stopping): drop, the
                // input must not fail because of the channel.
                if let Some(rt) = target.current_running_time() {
                    let b = buffer.make_mut();
                    b.set_pts(rt);
                    b.set_dts(gst::ClockTime::NONE);
                    // DISCONT upstream is about the source's own timestamps,
                    // which the bridge has just replaced; the switch judges
                    // interruptions by arrival (a sender that restarts
                    // within the timeout marks DISCONT for seconds after).
                    b.unset_flags(gst::BufferFlags::DISCONT | gst::BufferFlags::RESYNC);
                    let _ = target.push_buffer(buffer);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Builds the pipeline for one input. `name` names the pipeline in logs
/// (`channel.input.id`).
pub fn build(
    name: &str,
    kind: &InputKind,
    video: &VideoFormat,
    audio: &AudioFormat,
    target: &Bridge,
    stats: &Arc<InputStats>,
) -> anyhow::Result<Ingest> {
    let pipeline = gst::Pipeline::with_name(name);
    // Every pipeline of the process on the same monotonic clock.
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    let paced = matches!(kind, InputKind::Uri { paced: true, .. });
    let (vin, vsink) = video_normalizer(&pipeline, video, paced)?;
    let (ain, asink) = audio_normalizer(&pipeline, audio, paced)?;
    bridge(&vsink, target.video.clone(), stats.clone(), Media::Video);
    bridge(&asink, target.audio.clone(), stats.clone(), Media::Audio);
    let mut looped = false;
    let mut feed = None;
    match kind {
        InputKind::Uri {
            uri,
            paced,
            looped: l,
            ..
        } => {
            looped = *l;
            let dec = if crate::uri::srt_listener(uri) {
                let (src, dec) = fed_decoder(&pipeline, stats)?;
                feed = Some(src);
                dec
            } else {
                uri_decoder(&pipeline, uri, stats)?
            };
            decoded(&pipeline, &dec, None, &vin, &ain, !paced, stats)?;
        }
        InputKind::Test(t) => test_source(&pipeline, t, video, &vin, &ain)?,
        InputKind::Slate(Slate::Colour { argb, text }) => {
            let t = TestSource {
                pattern: "solid-color".into(),
                label: text.clone(),
                tone: 0.0,
                stall: None,
            };
            test_source(&pipeline, &t, video, &vin, &ain)?;
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
            let dec = uri_decoder(&pipeline, &uri, stats)?;
            decoded(&pipeline, &dec, Some(&freeze), &vin, &ain, true, stats)?;
        }
    }
    Ok(Ingest {
        pipeline,
        looped,
        feed,
    })
}

fn text_overlay(text: Option<&str>, valign: &str) -> anyhow::Result<gst::Element> {
    let o = make("textoverlay", Some("label"))?;
    o.set_property("text", text.unwrap_or_default());
    o.set_property("font-desc", "Sans Bold 28");
    o.set_property_from_str("valignment", valign);
    o.set_property_from_str("halignment", "left");
    o.set_property("shaded-background", true);
    Ok(o)
}

/// Counts the bytes a source element delivers (an atomic per buffer).
fn count_source_bytes(pad: &gst::Pad, stats: &Arc<InputStats>) {
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
/// receives.
fn uri_decoder(
    pipeline: &gst::Pipeline,
    uri: &str,
    stats: &Arc<InputStats>,
) -> anyhow::Result<gst::Element> {
    let dec = make("uridecodebin", Some("src"))?;
    dec.set_property("uri", uri);
    let stats = stats.clone();
    dec.connect("source-setup", false, move |args| {
        let source = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
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
fn fed_decoder(
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

/// A decoder (uridecodebin, decodebin) with its pads linked to the
/// normalizers as they appear; at no-more-pads a missing stream is made
/// synthetic. `video_to` overrides where video goes (the slate's
/// imagefreeze).
fn decoded(
    pipeline: &gst::Pipeline,
    dec: &gst::Element,
    video_to: Option<&gst::Element>,
    vin: &gst::Element,
    ain: &gst::Element,
    live: bool,
    stats: &Arc<InputStats>,
) -> anyhow::Result<()> {
    let vpad = video_to
        .unwrap_or(vin)
        .static_pad("sink")
        .ok_or_else(|| anyhow!("normalizer without a sink pad"))?;
    let apad = ain
        .static_pad("sink")
        .ok_or_else(|| anyhow!("normalizer without a sink pad"))?;
    {
        let (vpad, apad) = (vpad.clone(), apad.clone());
        dec.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let Some(kind) = caps.structure(0).map(|s| s.name().to_string()) else {
                return;
            };
            let target = if kind.starts_with("video/") {
                &vpad
            } else if kind.starts_with("audio/") {
                &apad
            } else {
                return;
            };
            // A second video or audio track is left unlinked (ignored).
            if !target.is_linked() {
                let _ = pad.link(target);
            }
        });
    }
    let weak = pipeline.downgrade();
    let stats = stats.clone();
    dec.connect_no_more_pads(move |_| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        if !apad.is_linked() {
            stats.audio_synthetic.store(true, Ordering::Relaxed);
            let _ = synthetic(&pipeline, Media::Audio, live, &apad);
        }
        if !vpad.is_linked() {
            stats.video_synthetic.store(true, Ordering::Relaxed);
            let _ = synthetic(&pipeline, Media::Video, live, &vpad);
        }
    });
    Ok(())
}

/// Silence or black for a source that lacks the stream.
fn synthetic(
    pipeline: &gst::Pipeline,
    media: Media,
    live: bool,
    to: &gst::Pad,
) -> anyhow::Result<()> {
    let src = match media {
        Media::Audio => {
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
fn test_source(
    pipeline: &gst::Pipeline,
    t: &TestSource,
    v: &VideoFormat,
    vin: &gst::Element,
    ain: &gst::Element,
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
    let asrc = make("audiotestsrc", Some("asrc"))?;
    asrc.set_property("is-live", true);
    if t.tone > 0.0 {
        asrc.set_property("freq", t.tone);
        asrc.set_property("volume", 0.3);
    } else {
        asrc.set_property_from_str("wave", "silence");
    }
    pipeline.add_many([&vsrc, &vcaps, &overlay, &asrc])?;
    gst::Element::link_many([&vsrc, &vcaps, &overlay, vin])?;
    asrc.link(ain)?;
    if let Some((every, dur)) = t.stall {
        for src in [&vsrc, &asrc] {
            stall_schedule(src, every, dur);
        }
    }
    Ok(())
}

/// `stall=EVERY/FOR`: drop everything during the last FOR of every EVERY,
/// on the monotonic clock, so the schedule survives the input's restarts.
fn stall_schedule(src: &gst::Element, every: Duration, dur: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_follows_the_real_stream() {
        let ms = 1_000_000;
        assert!(!filler_due(0, 10_000 * ms), "nothing real yet: no filler");
        assert!(filler_due(10_000 * ms, 10_000 * ms));
        assert!(filler_due(10_000 * ms, 10_250 * ms));
        assert!(
            !filler_due(10_000 * ms, 10_251 * ms),
            "the real stream stalled: so does the filler"
        );
    }

    #[test]
    fn stats_judge_real_media_only() {
        let s = InputStats::default();
        s.last_video.store(5, Ordering::Relaxed);
        s.last_audio.store(9, Ordering::Relaxed);
        assert_eq!(s.last_data(), 5);
        s.video_synthetic.store(true, Ordering::Relaxed);
        assert_eq!(s.last_data(), 9, "audio-only source judged on audio");
        s.reset();
        assert_eq!(s.last_data(), 0);
        assert!(!s.has_synthetic_audio());
    }

    #[test]
    fn a_fault_set_is_the_fault_read() {
        let stats = InputStats::default();
        assert_eq!(stats.fault(), InputFault::None);
        for f in [
            InputFault::Stall,
            InputFault::Black,
            InputFault::Silence,
            InputFault::None,
        ] {
            stats.set_fault(f);
            assert_eq!(stats.fault(), f);
        }
    }
}
