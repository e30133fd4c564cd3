//! Output pipelines: one per destination, fed from the channel's encoded
//! stream, isolated so that a failed destination touches nothing else.
//!
//! ```text
//! channel: encoders → appsink ══ Fanout ══► appsrc (video) ─┐
//!                                           appsrc (audio) ─┼► parse → mux → sink
//!                                           appsrc (track 2)┘
//! ```
//!
//! Every audio track goes to every output that can carry several (TS, MP4,
//! MKV, HLS as alternate renditions); RTMP (FLV) carries the first.
//!
//! An output begins on a keyframe. MPEG-TS outputs keep the channel's
//! timestamps, so they run on continuously across a restart; FLV and file
//! outputs start a new stream or file at zero.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use gst::prelude::*;
use gst_app::AppSrc;

use crate::uri::OutputKind;

mod fence;
mod playlist;
pub mod scte35;
mod sinks;
mod tracks;

pub use fence::{boottime_ns, Fence};
use sinks::sink_for;
pub use sinks::{fresh_file, next_segment_index};
pub use tracks::AudioOut;

/// Encoded frames an output may hold while its destination is slow; beyond
/// that the oldest go (this output only; the others never wait for it).
const QUEUE_BUFFERS: u64 = 250;

/// One rendition in an output: its video and the channel's audio tracks
/// (the first, or all of them).
pub struct Track {
    /// Index of the encoder (rendition) whose video it carries.
    pub rendition: usize,
    video: AppSrc,
    /// By audio track.
    audio: Vec<AppSrc>,
    /// Waiting for the first keyframe until set.
    started: AtomicBool,
    /// Subtracted from timestamps (containers that start at zero); set by
    /// the first keyframe.
    base: AtomicU64,
    /// A fleet channel's HLS track: it starts on a keyframe at a multiple
    /// of the segment duration of UTC (segment, frame, ns), and numbers
    /// its playlist from there.
    align: Option<(u64, u64, playlist::SequenceBase)>,
    /// The PTS of its first keyframe (`u64::MAX`: not started).
    first_key: Arc<AtomicU64>,
    /// Audio that came before the first keyframe: the part at or after it
    /// goes out once video starts (video may be delayed, e.g. by an
    /// active-active encoder's delay line, while audio is not).
    pending: Mutex<std::collections::VecDeque<(usize, gst::Buffer, Option<gst::Caps>)>>,
    /// SCTE-35 sections waiting for a video frame to pass.
    cues: Mutex<CueGate>,
}

/// mpegtsmux (1.22) keeps one SCTE-35 section in a single slot until it
/// writes its next packet: two section events with no frame between them
/// reach it in the same pass and the first is lost. So a track sends a
/// section only once a video frame followed the last one; the rest wait
/// in order, one per frame.
struct CueGate {
    /// A video frame went in since the last section.
    frame_since: bool,
    held: std::collections::VecDeque<gst::Event>,
}

impl Default for CueGate {
    fn default() -> Self {
        CueGate {
            frame_since: true,
            held: Default::default(),
        }
    }
}

/// Audio buffers held for a track that waits for its first keyframe
/// (about 20 s of AAC).
const PENDING_AUDIO: usize = 1000;

/// The entry points of one running output pipeline.
pub struct Feed {
    tracks: Vec<Track>,
    /// An HLS output's SCTE-35 breaks, for its playlists.
    breaks: Option<Arc<playlist::Breaks>>,
    rebase: bool,
    /// Encoded bytes accepted by the output so far.
    pub bytes: Arc<AtomicU64>,
    /// Encoded video frames accepted so far (of its first rendition).
    pub frames: Arc<AtomicU64>,
}

/// What an HLS output's playlist writer needs of its track.
struct HlsPlaylist {
    sequence: Option<playlist::SequenceBase>,
    breaks: Arc<playlist::Breaks>,
    first: Arc<AtomicU64>,
}

impl HlsPlaylist {
    fn of(track: &Track, breaks: &Arc<playlist::Breaks>) -> HlsPlaylist {
        HlsPlaylist {
            sequence: track.align.as_ref().map(|a| a.2.clone()),
            breaks: breaks.clone(),
            first: track.first_key.clone(),
        }
    }
}

impl Feed {
    /// Marks an SCTE-35 cue in an HLS output's playlists (`base`: its
    /// timeline's, as for the section).
    pub fn mark_cue(&self, cue: &scte35::Cue, base: u64) {
        let Some(b) = &self.breaks else {
            return;
        };
        let Some(at) = cue.at.checked_sub(base) else {
            return;
        };
        match cue.kind {
            scte35::CueKind::SpliceOut => {
                b.add(
                    at,
                    playlist::Edge::Out(cue.duration.map(|d| d.as_secs_f64())),
                );
                if let (Some(d), true) = (cue.duration, cue.auto_return) {
                    b.add(at + d.as_nanos() as u64, playlist::Edge::In);
                }
            }
            scte35::CueKind::SpliceIn => b.add(at, playlist::Edge::In),
            scte35::CueKind::Cancel => {}
        }
    }

    /// Sends `event` down every track's video, in order with its frames
    /// (appsrc queues serialized events with its buffers).
    pub fn send_video_event(&self, event: &gst::Event) -> usize {
        self.tracks.iter().filter(|t| t.send_cue(event)).count()
    }

    /// What the output's timeline is behind the channel's (its muxers'
    /// running time = channel running time − this); None until it has
    /// started on a keyframe.
    pub fn timeline_base(&self) -> Option<u64> {
        let t = self.tracks.first()?;
        if !t.started.load(Ordering::Acquire) {
            return None;
        }
        Some(if self.rebase {
            t.base.load(Ordering::Relaxed)
        } else {
            0
        })
    }
}

impl Track {
    /// Sends a section event now if a frame followed the last one, else
    /// holds it for the next frame ([`CueGate`]).
    fn send_cue(&self, event: &gst::Event) -> bool {
        let mut gate = self.cues.lock().unwrap_or_else(|e| e.into_inner());
        if gate.frame_since && gate.held.is_empty() {
            gate.frame_since = false;
            return self.video.send_event(event.clone());
        }
        gate.held.push_back(event.clone());
        true
    }

    /// A video frame went in: the next held section may follow it.
    fn frame_passed(&self) {
        let mut gate = self.cues.lock().unwrap_or_else(|e| e.into_inner());
        match gate.held.pop_front() {
            Some(e) => {
                gate.frame_since = false;
                let _ = self.video.send_event(e);
            }
            None => gate.frame_since = true,
        }
    }

    /// `audio`: the audio track it belongs to; `None`: video.
    fn push(
        &self,
        buffer: &gst::Buffer,
        caps: Option<&gst::Caps>,
        audio: Option<usize>,
        rebase: bool,
    ) {
        let src = match audio {
            None => &self.video,
            Some(t) => match self.audio.get(t) {
                Some(s) => s,
                None => return,
            },
        };
        if !self.started.load(Ordering::Acquire) {
            // The start and the held audio go together under this lock, so
            // audio arriving meanwhile queues behind them, in order.
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if !self.started.load(Ordering::Acquire) {
                if let Some(t) = audio {
                    pending.push_back((t, buffer.clone(), caps.cloned()));
                    while pending.len() > PENDING_AUDIO * self.audio.len().max(1) {
                        pending.pop_front();
                    }
                    return;
                }
                if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    return;
                }
                if let Some((segment, frame, seq)) = &self.align {
                    let pts = buffer.pts().map_or(0, |t| t.nseconds());
                    if pts % segment >= *frame {
                        return;
                    }
                    seq.store(pts / segment, Ordering::Release);
                }
                let first = buffer.dts().or(buffer.pts()).map_or(0, |t| t.nseconds());
                self.base.store(first, Ordering::Relaxed);
                let key = buffer.pts().map_or(0, |t| t.nseconds());
                self.first_key.store(key, Ordering::Release);
                let held: Vec<(usize, gst::Buffer, Option<gst::Caps>)> = pending
                    .drain(..)
                    .filter(|(_, b, _)| b.pts().is_some_and(|t| t.nseconds() >= key))
                    .collect();
                self.push_now(src, buffer, caps, rebase);
                for (t, a, c) in &held {
                    self.push_now(&self.audio[*t], a, c.as_ref(), rebase);
                }
                self.started.store(true, Ordering::Release);
                return;
            }
        }
        self.push_now(src, buffer, caps, rebase);
    }

    fn push_now(&self, src: &AppSrc, buffer: &gst::Buffer, caps: Option<&gst::Caps>, rebase: bool) {
        if let (None, Some(caps)) = (src.caps(), caps) {
            src.set_caps(Some(caps));
        }
        let buffer = if rebase {
            let base = self.base.load(Ordering::Relaxed);
            // Audio encoded before the first keyframe has no place here.
            if buffer.pts().is_some_and(|t| t.nseconds() < base) {
                return;
            }
            let mut buffer = buffer.copy();
            let b = buffer.make_mut();
            let shift = |t: Option<gst::ClockTime>| {
                t.map(|t| gst::ClockTime::from_nseconds(t.nseconds().saturating_sub(base)))
            };
            let (pts, dts) = (shift(b.pts()), shift(b.dts()));
            b.set_pts(pts);
            b.set_dts(dts);
            buffer
        } else {
            buffer.clone()
        };
        let _ = src.push_buffer(buffer);
        if src == &self.video {
            self.frame_passed();
        }
    }
}

/// The sample's buffer with its timestamps as channel running time: the
/// encoders shift theirs (x264enc by 1000 h), and every output must see
/// video and audio on the same timeline. A DTS before the start (B-frames)
/// is dropped; the muxer derives it.
pub fn running_time(sample: &gst::Sample) -> Option<gst::Buffer> {
    let mut buffer = sample.buffer_owned()?;
    let Some(segment) = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>())
    else {
        return Some(buffer);
    };
    let to_rt = |t: Option<gst::ClockTime>| {
        t.and_then(|t| match segment.to_running_time_full(t)? {
            gst::Signed::Positive(rt) => Some(rt),
            gst::Signed::Negative(_) => None,
        })
    };
    let (pts, dts) = (to_rt(buffer.pts()), to_rt(buffer.dts()));
    let b = buffer.make_mut();
    b.set_pts(pts);
    b.set_dts(dts);
    Some(buffer)
}

/// The pace of a stream of frames: when the last came, and the longest
/// wait between two since the last reset. Atomics only: it sits on the
/// media path.
#[derive(Default)]
pub struct Cadence {
    last: AtomicU64,
    max_gap: AtomicU64,
}

impl Cadence {
    /// A frame passed at `now` (monotonic ns).
    pub fn frame(&self, now: u64) {
        let last = self.last.swap(now, Ordering::Relaxed);
        if last > 0 {
            self.max_gap
                .fetch_max(now.saturating_sub(last), Ordering::Relaxed);
        }
    }

    pub fn reset_gap(&self) {
        self.max_gap.store(0, Ordering::Relaxed);
    }

    pub fn max_gap(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.max_gap.load(Ordering::Relaxed))
    }
}

/// Hands the channel's encoded frames to every running output. The lock
/// is only contended when an output starts or stops.
#[derive(Default)]
pub struct Fanout {
    feeds: Mutex<Vec<(u64, Arc<Feed>)>>,
    /// The pace of the encoded video (drills measure the output here).
    pub cadence: Cadence,
    /// On a UTC timeline (a fleet channel): when the last keyframe of the
    /// first rendition left the encoders, less its running time, ns. The
    /// boxes of a fleet compare theirs (the epoch offset).
    pub epoch_delay: Arc<std::sync::atomic::AtomicI64>,
    /// A fleet channel's scheduled handover ([`Fanout::set_window`]).
    window: Window,
}

/// The frames the outputs get (running time ns): from `from` on, before
/// `until` (0: no end).
#[derive(Default)]
struct Window {
    from: AtomicU64,
    until: AtomicU64,
}

impl Window {
    fn passes(&self, pts: Option<gst::ClockTime>) -> bool {
        let Some(t) = pts.map(gst::ClockTime::nseconds) else {
            return true;
        };
        let until = self.until.load(Ordering::Acquire);
        t >= self.from.load(Ordering::Acquire) && (until == 0 || t < until)
    }
}

impl Fanout {
    /// A scheduled handover cuts a fleet channel at a GOP boundary: the new
    /// leader's outputs get the frames from `from` on (their first is the
    /// keyframe there), the old leader's those before `until`; the
    /// receiver sees one continuous stream. `(0, 0)`: everything.
    pub fn set_window(&self, from: u64, until: u64) {
        self.window.from.store(from, Ordering::Release);
        self.window.until.store(until, Ordering::Release);
    }

    fn each(&self, f: impl Fn(&Feed)) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for (_, feed) in feeds.iter() {
            f(feed);
        }
    }

    /// An encoded video frame of `rendition` (timestamps in running time).
    pub fn video(&self, rendition: usize, buffer: &gst::Buffer, caps: Option<&gst::Caps>) {
        if rendition == 0 {
            self.cadence.frame(crate::monotonic_ns());
            if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                if let Some(pts) = buffer.pts() {
                    let utc = nonstop_api::now_us() as i64 * 1000;
                    self.epoch_delay
                        .store(utc - pts.nseconds() as i64, Ordering::Relaxed);
                }
            }
        }
        if !self.window.passes(buffer.pts()) {
            return;
        }
        self.each(|f| {
            for t in f.tracks.iter().filter(|t| t.rendition == rendition) {
                t.push(buffer, caps, None, f.rebase);
            }
        });
    }

    /// An encoded audio sample of the channel's audio track `track`: to
    /// every output that carries it.
    pub fn audio(&self, track: usize, sample: &gst::Sample) {
        let Some(buffer) = running_time(sample) else {
            return;
        };
        if !self.window.passes(buffer.pts()) {
            return;
        }
        let caps = sample.caps_owned();
        self.each(|f| {
            for t in &f.tracks {
                t.push(&buffer, caps.as_ref(), Some(track), f.rebase);
            }
        });
    }

    /// A rendition's video ended: end it in every output, so muxers
    /// finalize once audio ended too.
    pub fn eos_video(&self, rendition: usize) {
        self.each(|f| {
            for t in f.tracks.iter().filter(|t| t.rendition == rendition) {
                let _ = t.video.end_of_stream();
            }
        });
    }

    /// An audio track of the channel ended.
    pub fn eos_audio(&self, track: usize) {
        self.each(|f| {
            for t in &f.tracks {
                if let Some(a) = t.audio.get(track) {
                    let _ = a.end_of_stream();
                }
            }
        });
    }

    pub fn add(&self, key: u64, feed: Arc<Feed>) {
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, feed));
    }

    pub fn remove(&self, key: u64) {
        self.feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| *k != key);
    }
}

/// What an output needs to know of a rendition it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub index: usize,
    pub id: String,
    /// `h264parse` or `h265parse`.
    pub parser: &'static str,
    pub size: (u32, u32),
    /// Video + audio, bit/s (HLS BANDWIDTH).
    pub bandwidth: u64,
    /// RFC 6381 codecs string (HLS CODECS).
    pub codecs: String,
    /// One frame, ns.
    pub frame: u64,
}

/// A built (not yet started) output pipeline.
pub struct Egress {
    pub pipeline: gst::Pipeline,
    pub feed: Arc<Feed>,
    /// Where it writes, for logs (files get a fresh name per start).
    pub target: Option<PathBuf>,
}

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    crate::element::make(factory, None)
}

fn appsrc(name: &str) -> AppSrc {
    crate::element::leaky_appsrc(name, None, false, QUEUE_BUFFERS)
}

/// Counts bytes (and, given `frames`, buffers) leaving an appsrc: the
/// output's progress, judged by data accepted downstream rather than by
/// connection state. Atomics only: it is on the media path.
fn count_bytes(src: &AppSrc, bytes: &Arc<AtomicU64>, frames: Option<&Arc<AtomicU64>>) {
    let bytes = bytes.clone();
    let frames = frames.cloned();
    if let Some(pad) = src.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                bytes.fetch_add(b.size() as u64, Ordering::Relaxed);
                if let Some(f) = &frames {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// Builds the pipeline for one output carrying `renditions` (one, or
/// several for HLS: a variant playlist each under `DIR/<encoder id>/` and
/// `DIR/master.m3u8`) and the channel's `audio` tracks (several for HLS:
/// the first in every variant, the others as alternate renditions under
/// `DIR/audio-<id>/`). `name` names it in logs (`channel.output.id`).
pub fn build(
    name: &str,
    kind: &OutputKind,
    renditions: &[Rendition],
    audio: &[AudioOut],
    fence: Option<&Arc<Fence>>,
    epoch: bool,
) -> anyhow::Result<Egress> {
    if renditions.is_empty() {
        return Err(anyhow!("the output carries no encoder"));
    }
    let pipeline = gst::Pipeline::with_name(name);
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    let bytes = Arc::new(AtomicU64::new(0));
    let frames = Arc::new(AtomicU64::new(0));
    let mut tracks = Vec::new();
    let mut parsed = Vec::new();
    for (k, r) in renditions.iter().enumerate() {
        let vsrc = appsrc(&format!("video_{k}"));
        let vparse = make(r.parser)?;
        pipeline.add_many([vsrc.upcast_ref(), &vparse])?;
        vsrc.link(&vparse)?;
        // The first rendition carries every audio track the output can
        // take; the other variants of an HLS ladder, the first.
        let carried = match kind {
            _ if k > 0 => 1,
            OutputKind::Rtmp { .. } => 1,
            _ => audio.len().max(1),
        };
        let mut asrcs = Vec::new();
        let mut aparses = Vec::new();
        for a in 0..carried {
            let asrc = appsrc(&format!("audio_{k}_{a}"));
            // Audio may run ahead of (delayed) video by seconds: room for it.
            asrc.set_max_buffers(PENDING_AUDIO as u64);
            let aparse = make("aacparse")?;
            pipeline.add_many([asrc.upcast_ref(), &aparse])?;
            asrc.link(&aparse)?;
            if let Some(pad) = aparse.static_pad("src") {
                tracks::tag_language(&pad, audio.get(a).and_then(|t| t.language.as_deref()));
            }
            count_bytes(&asrc, &bytes, None);
            asrcs.push(asrc);
            aparses.push(aparse);
        }
        // Before any muxer: HLS and segmented recordings are bins whose
        // last element is out of reach.
        if let Some(f) = fence {
            for p in std::iter::once(&vparse).chain(&aparses) {
                if let Some(pad) = p.static_pad("src") {
                    f.guard(&pad);
                }
            }
        }
        // Frames of the first rendition: an output's frame rate is the
        // channel's, whatever number of renditions it carries.
        count_bytes(&vsrc, &bytes, (k == 0).then_some(&frames));
        tracks.push(Track {
            rendition: r.index,
            video: vsrc,
            audio: asrcs,
            started: AtomicBool::new(false),
            base: AtomicU64::new(0),
            first_key: Arc::new(AtomicU64::new(u64::MAX)),
            align: match kind {
                OutputKind::Hls { segment, .. } if epoch => Some((
                    (segment.as_nanos() as u64).max(1),
                    r.frame.max(1),
                    Arc::new(AtomicU64::new(u64::MAX)),
                )),
                _ => None,
            },
            pending: Mutex::new(std::collections::VecDeque::new()),
            cues: Mutex::default(),
        });
        parsed.push((vparse, aparses));
    }
    let mut target = None;
    let mut rebase = false;
    let breaks = Arc::new(playlist::Breaks::default());
    match kind {
        OutputKind::Hls {
            dir,
            segment,
            playlist,
        } => {
            let several = renditions.len() > 1;
            let mut variants = Vec::new();
            for (k, (r, (vparse, aparses))) in renditions.iter().zip(&parsed).enumerate() {
                let sub = OutputKind::Hls {
                    dir: if several {
                        format!("{dir}/{}", r.id)
                    } else {
                        dir.clone()
                    },
                    segment: *segment,
                    playlist: *playlist,
                };
                let hls = HlsPlaylist::of(&tracks[k], &breaks);
                let (v, a, _) = sink_for(&pipeline, &sub, &mut target, fence, hls)?;
                link_request(vparse, &v, "video")?;
                link_request(&aparses[0], &a, "audio")?;
                let uri = if several {
                    format!("{}/index.m3u8", r.id)
                } else {
                    "index.m3u8".to_owned()
                };
                variants.push((r, uri));
            }
            // The other audio tracks: an audio-only playlist each.
            for (t, aparse) in audio.iter().zip(&parsed[0].1).skip(1) {
                let sub = OutputKind::Hls {
                    dir: tracks::hls_dir(dir, t),
                    segment: *segment,
                    playlist: *playlist,
                };
                let hls = HlsPlaylist::of(&tracks[0], &breaks);
                let (_, a, _) = sink_for(&pipeline, &sub, &mut None, fence, hls)?;
                link_request(aparse, &a, "audio")?;
            }
            if several || audio.len() > 1 {
                let master = Path::new(dir).join("master.m3u8");
                tracks::write_master(&master, &variants, audio)
                    .with_context(|| format!("cannot write {}", master.display()))?;
                target = Some(master);
            }
        }
        _ => {
            let hls = HlsPlaylist::of(&tracks[0], &breaks);
            let (v, a, r) = sink_for(&pipeline, kind, &mut target, fence, hls)?;
            rebase = r;
            link_request(&parsed[0].0, &v, "video")?;
            for aparse in &parsed[0].1 {
                link_request(aparse, &a, "audio")?;
            }
        }
    }
    let feed = Arc::new(Feed {
        tracks,
        breaks: matches!(kind, OutputKind::Hls { .. }).then_some(breaks),
        rebase,
        bytes,
        frames,
    });
    Ok(Egress {
        pipeline,
        feed,
        target,
    })
}

/// Links `from` to a request pad of `to` whose template fits `media`
/// (`video`, `audio`, `video_%u`, `audio_%u`, `sink_%d`).
fn link_request(from: &gst::Element, to: &gst::Element, media: &str) -> anyhow::Result<()> {
    let src = from
        .static_pad("src")
        .ok_or_else(|| anyhow!("{} has no src pad", from.name()))?;
    let caps = src.query_caps(None);
    let pad = to
        .request_pad_simple(media)
        .or_else(|| to.request_pad_simple(&format!("{media}_%u")))
        .or_else(|| to.request_pad_simple("sink_%d"))
        .or_else(|| to.compatible_pad(&src, Some(&caps)))
        .ok_or_else(|| anyhow!("{} takes no {media} stream", to.name()))?;
    src.link(&pad)
        .with_context(|| format!("linking {media} into {}", to.name()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_lets_out_only_what_its_deadline_allows() {
        gst::init().unwrap();
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("signal-handoffs", true)
            .build()
            .unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        sink.connect("handoff", false, move |_| {
            s.fetch_add(1, Ordering::SeqCst);
            None
        });
        let sinkpad = sink.static_pad("sink").unwrap();
        let fence = Arc::new(Fence::default());
        fence.guard(&sinkpad);
        sink.set_state(gst::State::Playing).unwrap();
        // Pushed by hand, so each push has passed the probe when it returns.
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        src.set_active(true).unwrap();
        src.link(&sinkpad).unwrap();
        src.push_event(gst::event::StreamStart::new("fence"));
        src.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()));
        let push = |n: u64| {
            for _ in 0..n {
                let _ = src.push(gst::Buffer::with_size(188).unwrap());
            }
        };
        // Closed (a standby, or no lease yet): nothing.
        push(3);
        // Open for an hour: all of it.
        fence.open_until(boottime_ns() + 3_600_000_000_000);
        assert!(fence.permits());
        push(4);
        // The deadline passed (a box waking from a freeze): nothing more,
        // with no one having closed it.
        fence.open_until(boottime_ns().saturating_sub(1));
        assert!(!fence.permits());
        push(5);
        sink.set_state(gst::State::Null).unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 4);
        assert_eq!(fence.dropped.load(Ordering::SeqCst), 8);
        assert_eq!(fence.remaining(), std::time::Duration::ZERO);
    }

    #[test]
    fn a_handover_end_holds_against_renewals() {
        let fence = Fence::default();
        let now = boottime_ns();
        fence.open_until(now + 3_600_000_000_000);
        fence.end_at(now.saturating_sub(1));
        // A renewal moves the lease's deadline, never past the end.
        fence.open_until(now + 7_200_000_000_000);
        assert!(!fence.permits());
        assert_eq!(fence.remaining(), std::time::Duration::ZERO);
        fence.end_at(now + 1_800_000_000_000);
        assert!(fence.permits());
        assert!(fence.remaining() <= std::time::Duration::from_secs(1800));
        fence.end_at(0);
        assert!(fence.remaining() > std::time::Duration::from_secs(7000));
    }

    #[test]
    fn a_handover_window_cuts_between_two_frames() {
        let w = Window::default();
        let at = |ms: u64| Some(gst::ClockTime::from_mseconds(ms));
        assert!(w.passes(at(0)) && w.passes(at(u64::MAX / 2_000_000)));
        // The old leader: everything before the cut at 2 s.
        w.until.store(2_000_000_000, Ordering::Release);
        assert!(w.passes(at(1960)));
        assert!(!w.passes(at(2000)));
        // The new leader: from the cut on.
        w.until.store(0, Ordering::Release);
        w.from.store(2_000_000_000, Ordering::Release);
        assert!(!w.passes(at(1960)));
        assert!(w.passes(at(2000)) && w.passes(at(2040)));
        // No timestamp: nothing to judge by, it goes.
        assert!(w.passes(None));
    }

    #[test]
    fn recordings_never_overwrite() {
        let dir = std::env::temp_dir().join(format!("nonstop-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("news.mp4");
        assert_eq!(fresh_file(&p), p);
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(fresh_file(&p), dir.join("news-1.mp4"));
        std::fs::write(dir.join("news-1.mp4"), b"x").unwrap();
        assert_eq!(fresh_file(&p), dir.join("news-2.mp4"));

        let s = dir.join("seg.ts");
        assert_eq!(next_segment_index(&s), 0);
        std::fs::write(dir.join("seg-00004.ts"), b"x").unwrap();
        std::fs::write(dir.join("seg-00001.ts"), b"x").unwrap();
        std::fs::write(dir.join("seg-x.ts"), b"x").unwrap();
        assert_eq!(next_segment_index(&s), 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_cues_never_reach_the_muxer_without_a_frame_between() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let (vsrc, asrc) = (appsrc("video_0"), appsrc("audio_0"));
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        pipeline
            .add_many([vsrc.upcast_ref(), asrc.upcast_ref(), &sink])
            .unwrap();
        vsrc.link(&sink).unwrap();
        // What leaves the video appsrc, in order: C (a cue) or F (a frame).
        let seen = Arc::new(Mutex::new(String::new()));
        let s = seen.clone();
        vsrc.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                let mark = match &info.data {
                    Some(gst::PadProbeData::Buffer(_)) => Some('F'),
                    Some(gst::PadProbeData::Event(e))
                        if e.type_() == gst::EventType::CustomDownstream =>
                    {
                        Some('C')
                    }
                    _ => None,
                };
                if let Some(m) = mark {
                    s.lock().unwrap().push(m);
                }
                gst::PadProbeReturn::Ok
            },
        );
        let track = Track {
            rendition: 0,
            video: vsrc,
            audio: vec![asrc],
            started: AtomicBool::new(false),
            base: AtomicU64::new(0),
            first_key: Arc::new(AtomicU64::new(u64::MAX)),
            align: None,
            pending: Mutex::default(),
            cues: Mutex::default(),
        };
        let feed = Feed {
            tracks: vec![track],
            breaks: None,
            rebase: false,
            bytes: Default::default(),
            frames: Default::default(),
        };
        pipeline.set_state(gst::State::Playing).unwrap();
        let cue = || gst::event::CustomDownstream::new(gst::Structure::new_empty("cue"));
        let frame = |n: u64| {
            let mut b = gst::Buffer::with_size(8).unwrap();
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * n));
            feed.tracks[0].push(&b, None, None, false);
        };
        frame(0);
        // Three cues in one frame's time: one now, one after each frame.
        for _ in 0..3 {
            assert_eq!(feed.send_video_event(&cue()), 1);
        }
        for n in 1..4 {
            frame(n);
        }
        let want = "FCFCFCF";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while seen.lock().unwrap().len() < want.len() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(*seen.lock().unwrap(), want);
    }

    fn rendition(index: usize, id: &str) -> Rendition {
        Rendition {
            index,
            id: id.into(),
            parser: "h264parse",
            size: (1280, 720),
            bandwidth: 3_128_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            frame: 40_000_000,
        }
    }

    /// An output of one rendition with these audio tracks.
    fn build_one(kind: &OutputKind, tracks: &[&str]) -> anyhow::Result<Egress> {
        build(
            "t",
            kind,
            &[rendition(0, "hd")],
            &audio(tracks),
            None,
            false,
        )
    }

    fn audio(ids: &[&str]) -> Vec<AudioOut> {
        ids.iter()
            .map(|id| AudioOut {
                id: (*id).into(),
                language: Some((*id).into()),
                bitrate: 128_000,
            })
            .collect()
    }

    #[test]
    fn hls_with_several_renditions_writes_a_master_playlist() {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("nonstop-ladder-{}", std::process::id()));
        let kind = crate::uri::output_kind(&format!("hls://{}", dir.display())).unwrap();
        let mut sd = rendition(1, "sd");
        sd.size = (640, 360);
        sd.bandwidth = 1_128_000;
        let e = build(
            "t",
            &kind,
            &[rendition(0, "hd"), sd],
            &audio(&["eng"]),
            None,
            false,
        )
        .unwrap();
        assert_eq!(e.target, Some(dir.join("master.m3u8")));
        assert_eq!(
            std::fs::read_to_string(dir.join("master.m3u8")).unwrap(),
            "#EXTM3U\n#EXT-X-VERSION:3\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3128000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\nhd/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1128000,RESOLUTION=640x360,CODECS=\"avc1.64001f,mp4a.40.2\"\nsd/index.m3u8\n"
        );
        assert!(dir.join("hd").is_dir() && dir.join("sd").is_dir());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_output_kind_builds() {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("nonstop-out-{}", std::process::id()));
        let kinds = [
            "srt://127.0.0.1:9999?mode=caller",
            "udp://127.0.0.1:5000",
            "rtmp://127.0.0.1/live/key",
            &format!("hls://{}/hls?segment=2s", dir.display()),
            &format!("file://{}/a.mp4", dir.display()),
            &format!("file://{}/b.mkv?segment=10s", dir.display()),
            &format!("file://{}/c.ts", dir.display()),
        ];
        for uri in kinds {
            let kind = crate::uri::output_kind(uri).unwrap();
            let e = build_one(&kind, &["eng"]).unwrap_or_else(|e| panic!("{uri}: {e:#}"));
            assert!(e.pipeline.children().len() >= 5, "{uri}");
            // Three tracks: each has its own stream, except in FLV (one);
            // HLS puts two in playlists of their own.
            let e = build_one(&kind, &["eng", "spa", "fre"])
                .unwrap_or_else(|e| panic!("{uri}, three tracks: {e:#}"));
            let parsers = e
                .pipeline
                .iterate_elements()
                .into_iter()
                .flatten()
                .filter(|e| e.factory().is_some_and(|f| f.name() == "aacparse"))
                .count();
            let want = if uri.starts_with("rtmp") { 1 } else { 3 };
            assert_eq!(parsers, want, "{uri}");
            if uri.starts_with("hls") {
                for t in ["spa", "fre"] {
                    assert!(dir.join(format!("hls/audio-{t}")).is_dir(), "{uri}: {t}");
                }
                let master = std::fs::read_to_string(dir.join("hls/master.m3u8")).unwrap();
                assert!(master.contains("URI=\"audio-fre/index.m3u8\""), "{master}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The udpsink of a built udp:// output.
    fn udpsink_of(uri: &str) -> anyhow::Result<gst::Element> {
        let kind = crate::uri::output_kind(uri).map_err(|e| anyhow!(e))?;
        let e = build_one(&kind, &["eng"])?;
        let sink = e
            .pipeline
            .iterate_elements()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name() == "udpsink"))
            .expect("a udpsink");
        Ok(sink)
    }

    #[test]
    fn udp_options_map_onto_udpsink() {
        gst::init().unwrap();
        let sink = udpsink_of("udp://239.1.1.1:5000?ttl=16&iface=lo&loop=false").unwrap();
        assert_eq!(sink.property::<String>("host"), "239.1.1.1");
        assert_eq!(sink.property::<i32>("port"), 5000);
        assert_eq!(sink.property::<i32>("ttl-mc"), 16);
        assert_eq!(sink.property::<i32>("ttl"), 64, "the unicast TTL untouched");
        assert_eq!(
            sink.property::<Option<String>>("multicast-iface")
                .as_deref(),
            Some("lo")
        );
        assert!(!sink.property::<bool>("loop"));
        // Without options: udpsink's defaults (multicast TTL 1, loop on).
        let sink = udpsink_of("udp://239.1.1.1:5000").unwrap();
        assert_eq!(sink.property::<i32>("ttl-mc"), 1);
        assert!(sink.property::<bool>("loop"));
        assert_eq!(sink.property::<Option<String>>("multicast-iface"), None);
        // A unicast destination's TTL is udpsink's `ttl`.
        let sink = udpsink_of("udp://127.0.0.1:5000?ttl=3").unwrap();
        assert_eq!(sink.property::<i32>("ttl"), 3);
        assert_eq!(sink.property::<i32>("ttl-mc"), 1);
        // An interface this machine lacks: the build fails, naming it.
        let err = udpsink_of("udp://239.1.1.1:5000?iface=nosuch0").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "multicast interface \"nosuch0\" does not exist on this machine"
        );
    }
}
