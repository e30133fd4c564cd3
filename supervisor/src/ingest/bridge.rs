//! The bridge from an input pipeline into the channel pipeline: an
//! appsink callback that passes each buffer to the channel's appsrc, keeps
//! the input's counters, fills a stream the source lacks, and applies a
//! drill's fault.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use gst::prelude::*;
use gst_app::{AppSink, AppSinkCallbacks, AppSrc};

use super::MAX_DUPLICATION;

/// The input's appsrcs in the channel pipeline: where its media goes.
#[derive(Clone, Debug)]
pub struct Bridge {
    pub video: AppSrc,
    /// One per audio track of the channel.
    pub audio: Vec<AppSrc>,
}

/// What the input's streaming threads record and the channel reads:
/// atomics only, nothing locked per buffer.
#[derive(Default)]
pub struct InputStats {
    last_video: AtomicU64,
    last_audio: AtomicU64,
    pub(super) video_synthetic: AtomicBool,
    /// The first audio track is synthetic.
    pub(super) audio_synthetic: AtomicBool,
    /// The other tracks that are: bit k for track k.
    tracks_synthetic: std::sync::atomic::AtomicU32,
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
        self.tracks_synthetic.store(0, Ordering::Relaxed);
    }

    /// Audio track `k` of this input is silence made here (the source
    /// has no stream for it).
    pub(super) fn set_audio_synthetic(&self, k: usize) {
        match k {
            0 => self.audio_synthetic.store(true, Ordering::Relaxed),
            k => {
                self.tracks_synthetic
                    .fetch_or(1 << k.min(31), Ordering::Relaxed);
            }
        }
    }

    fn track_synthetic(&self, k: usize) -> bool {
        self.tracks_synthetic.load(Ordering::Relaxed) & (1 << k.min(31)) != 0
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
pub(super) fn blanked(buffer: &gst::Buffer, planes: &[(usize, u8)]) -> Option<gst::Buffer> {
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
pub(super) enum Media {
    Video,
    /// The first audio track: with the video, what tells the input is live.
    Audio,
    /// Another audio track (its index): passed and counted, nothing more.
    Track(usize),
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

/// Whether filler (the synthetic stream of a source without audio or
/// video) passes, given when the source last delivered the other stream
/// (monotonic ns; 0: never): only while that is no older than
/// [`MAX_DUPLICATION`], so a source's gaps reach the switch as gaps.
pub(super) fn filler_due(last_real: u64, now: u64) -> bool {
    last_real > 0 && now.saturating_sub(last_real) <= MAX_DUPLICATION.as_nanos() as u64
}

/// Hands every normalized buffer to the channel's appsrc, stamped with the
/// channel's running time at arrival: the channel judges timing by
/// arrival, and the input's own timestamps mean nothing there.
/// What a bridge puts on its frames besides passing them.
#[derive(Default)]
pub(super) struct Extras {
    /// The input's paced captions.
    pub captions: Option<super::captions::Shared>,
    /// The caps of the reference timestamp that marks each frame with its
    /// input running time (for SCTE-35 cues).
    pub mark: Option<gst::Caps>,
}

pub(super) fn bridge(
    sink: &AppSink,
    target: AppSrc,
    stats: Arc<InputStats>,
    media: Media,
    extras: Extras,
) {
    let Extras { captions, mark } = extras;
    sink.set_callbacks(
        AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(mut buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let fault = stats.fault();
                if let Some(cc) = &captions {
                    let on = fault != InputFault::Stall;
                    super::captions::put_on(cc, on.then(|| buffer.make_mut()));
                }
                match (fault, media) {
                    (InputFault::Stall, _) => return Ok(gst::FlowSuccess::Ok),
                    (InputFault::Black, Media::Video) => {
                        // I420: a luma plane of 2/3 of the size, then chroma.
                        let luma = buffer.size() * 2 / 3;
                        if let Some(mut b) =
                            blanked(&buffer, &[(luma, 16), (buffer.size() - luma, 128)])
                        {
                            // The captions stay: a black picture is no
                            // reason to lose the words.
                            if let Some(m) = buffer.meta::<gst_video::VideoCaptionMeta>() {
                                gst_video::VideoCaptionMeta::add(
                                    b.make_mut(),
                                    m.caption_type(),
                                    m.data(),
                                );
                            }
                            buffer = b;
                        }
                    }
                    (InputFault::Silence, Media::Audio | Media::Track(_)) => {
                        if let Some(b) = blanked(&buffer, &[(buffer.size(), 0)]) {
                            buffer = b;
                        }
                    }
                    _ => {}
                }
                let (synthetic, other_last) = match media {
                    Media::Video => (
                        stats.video_synthetic.load(Ordering::Relaxed),
                        stats.last_audio.load(Ordering::Relaxed),
                    ),
                    Media::Audio => (
                        stats.audio_synthetic.load(Ordering::Relaxed),
                        stats.last_video.load(Ordering::Relaxed),
                    ),
                    Media::Track(k) => (stats.track_synthetic(k), stats.last_data()),
                };
                if let Media::Track(_) = media {
                    if synthetic && !filler_due(other_last, crate::monotonic_ns()) {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                    if !synthetic {
                        stats
                            .bytes
                            .fetch_add(buffer.size() as u64, Ordering::Relaxed);
                    }
                } else if synthetic {
                    // Filler for the stream a source lacks flows only while
                    // the source delivers the other one: a source with
                    // neither (garbage typefound as subtitles), or whose
                    // decoder made one frame of some garbage, must not
                    // look alive to the switch.
                    if !filler_due(other_last, crate::monotonic_ns()) {
                        return Ok(gst::FlowSuccess::Ok);
                    }
                } else {
                    let now = crate::monotonic_ns().max(1);
                    match media {
                        Media::Video => stats.last_video.store(now, Ordering::Relaxed),
                        // (Other tracks took the branch above.)
                        Media::Audio | Media::Track(_) => {
                            stats.last_audio.store(now, Ordering::Relaxed)
                        }
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
                        Media::Audio | Media::Track(_) => &stats.first_audio,
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
                    let input_rt = mark.as_ref().and_then(|_| {
                        let seg = sample.segment()?.downcast_ref::<gst::ClockTime>()?.clone();
                        seg.to_running_time(buffer.pts()?)
                    });
                    let b = buffer.make_mut();
                    if let (Some(caps), Some(t)) = (&mark, input_rt) {
                        gst::ReferenceTimestampMeta::add(b, caps, t, gst::ClockTime::NONE);
                    }
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
