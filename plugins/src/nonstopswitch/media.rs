//! What the switch knows about media: the negotiated format and its output
//! slots, the per-input queues (frame / sample FIFOs), and the black frames
//! and silence it emits when no input can fill a slot.

use std::collections::VecDeque;

use gst::prelude::*;
use gst::ClockTime;

/// Audio goes out in fixed chunks of this length.
pub const AUDIO_CHUNK: ClockTime = ClockTime::from_mseconds(10);

#[derive(Debug, Clone)]
pub enum Kind {
    Video(gst_video::VideoInfo),
    Audio {
        info: gst_audio::AudioInfo,
        /// Samples per output chunk.
        chunk: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Format {
    pub caps: gst::Caps,
    pub kind: Kind,
    /// `grid_rate` and `slot_duration`, worked out once: they are asked for
    /// several times per output slot.
    rate: (u64, u64),
    slot: ClockTime,
}

impl Format {
    fn new(caps: &gst::Caps, kind: Kind) -> Format {
        let rate = match &kind {
            Kind::Video(info) => (info.fps().numer() as u64, info.fps().denom() as u64),
            Kind::Audio { info, chunk } => (info.rate() as u64, *chunk),
        };
        let slot = ClockTime::SECOND
            .mul_div_ceil(rate.1, rate.0)
            .unwrap_or(ClockTime::SECOND);
        Format {
            caps: caps.clone(),
            kind,
            rate,
            slot,
        }
    }

    /// Validates caps offered on a sink pad; the error says what to change.
    pub fn from_caps(caps: &gst::Caps) -> Result<Format, String> {
        let s = caps
            .structure(0)
            .ok_or_else(|| format!("empty caps {caps}"))?;
        if !caps.is_fixed() {
            return Err(format!("caps are not fixed: {caps}"));
        }
        let sysmem = caps
            .features(0)
            .is_none_or(|f| f.is_any() || f.contains(gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY));
        if !sysmem {
            return Err(format!(
                "only system-memory raw media can be switched, got {caps}; \
                 download it first (for example cudadownload or vapostproc ! videoconvert)"
            ));
        }
        match s.name().as_str() {
            "video/x-raw" => {
                let info = gst_video::VideoInfo::from_caps(caps)
                    .map_err(|_| format!("unusable raw video caps {caps}"))?;
                if info.fps().numer() <= 0 || info.fps().denom() <= 0 {
                    return Err(format!(
                        "raw video needs a fixed, non-zero framerate to keep a constant \
                         cadence, got {caps}; add videorate ! video/x-raw,framerate=25/1 upstream"
                    ));
                }
                Ok(Format::new(caps, Kind::Video(info)))
            }
            "audio/x-raw" => {
                let info = gst_audio::AudioInfo::from_caps(caps)
                    .map_err(|_| format!("unusable raw audio caps {caps}"))?;
                if info.layout() != gst_audio::AudioLayout::Interleaved {
                    return Err(format!(
                        "raw audio must be interleaved, got {caps}; add audioconvert upstream"
                    ));
                }
                let chunk = (info.rate() as u64)
                    .mul_div_round(AUDIO_CHUNK.nseconds(), ClockTime::SECOND.nseconds())
                    .unwrap_or(1)
                    .max(1);
                Ok(Format::new(caps, Kind::Audio { info, chunk }))
            }
            other => Err(format!(
                "nonstopswitch switches raw video or raw audio only, got {other} ({caps}); \
                 encoded input is not supported yet: decode it first (for example decodebin)"
            )),
        }
    }

    /// What differs between two inputs' media layouts, as "field (a vs b)".
    /// Empty means the switch can cut between them. Fields that do not
    /// change the data layout (colorimetry, chroma-site, multiview, channel
    /// positions) are not compared: the output carries the first input's.
    pub fn differences(&self, other: &Format) -> Vec<String> {
        let mut d = Vec::new();
        let mut cmp = |name: &str, a: String, b: String| {
            if a != b {
                d.push(format!("{name} ({a} vs {b})"));
            }
        };
        match (&self.kind, &other.kind) {
            (Kind::Video(a), Kind::Video(b)) => {
                cmp(
                    "format",
                    a.format().to_str().to_string(),
                    b.format().to_str().to_string(),
                );
                cmp("width", a.width().to_string(), b.width().to_string());
                cmp("height", a.height().to_string(), b.height().to_string());
                cmp("framerate", a.fps().to_string(), b.fps().to_string());
                cmp(
                    "pixel-aspect-ratio",
                    a.par().to_string(),
                    b.par().to_string(),
                );
                cmp(
                    "interlace-mode",
                    format!("{:?}", a.interlace_mode()),
                    format!("{:?}", b.interlace_mode()),
                );
            }
            (Kind::Audio { info: a, .. }, Kind::Audio { info: b, .. }) => {
                cmp(
                    "format",
                    a.format().to_str().to_string(),
                    b.format().to_str().to_string(),
                );
                cmp("rate", a.rate().to_string(), b.rate().to_string());
                cmp(
                    "channels",
                    a.channels().to_string(),
                    b.channels().to_string(),
                );
            }
            _ => cmp(
                "media type",
                self.caps
                    .structure(0)
                    .map_or("?".into(), |s| s.name().to_string()),
                other
                    .caps
                    .structure(0)
                    .map_or("?".into(), |s| s.name().to_string()),
            ),
        }
        d
    }

    /// Output slot rate as a fraction: slot `k` starts `k * den / num` s in.
    pub fn grid_rate(&self) -> (u64, u64) {
        self.rate
    }

    pub fn slot_duration(&self) -> ClockTime {
        self.slot
    }

    pub fn is_video(&self) -> bool {
        matches!(self.kind, Kind::Video(_))
    }

    /// A black frame (video) or a chunk of silence (audio).
    pub fn filler(&self) -> Result<gst::Buffer, String> {
        match &self.kind {
            Kind::Video(info) => black_frame(info),
            Kind::Audio { info, chunk } => {
                let mut buf = gst::Buffer::with_size(*chunk as usize * info.bpf() as usize)
                    .map_err(|e| e.to_string())?;
                {
                    let b = buf.get_mut().expect("new buffer");
                    let mut map = b.map_writable().map_err(|e| e.to_string())?;
                    info.format_info().fill_silence(map.as_mut_slice());
                }
                Ok(buf)
            }
        }
    }

    pub fn new_queue(&self) -> InputQueue {
        match &self.kind {
            Kind::Video(_) => InputQueue::Video {
                frames: VecDeque::new(),
                period: self.slot_duration(),
                credit: ClockTime::ZERO,
            },
            Kind::Audio { info, chunk } => InputQueue::Audio {
                adapter: gst_base::UniqueAdapter::new(),
                bpf: info.bpf() as usize,
                rate: info.rate() as u64,
                chunk_bytes: *chunk as usize * info.bpf() as usize,
                silence: self.filler().ok(),
                max_in: ClockTime::ZERO,
                arrived: ClockTime::ZERO,
                last_arrival: None,
                chunk: self.slot_duration(),
                credit: ClockTime::ZERO,
            },
        }
    }
}

/// Black in any format videoconvert knows: convert an RGB black frame.
fn black_frame(info: &gst_video::VideoInfo) -> Result<gst::Buffer, String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "cannot make a black frame in {}: {e}",
            info.format().to_str()
        )
    };
    let src_info =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Argb, info.width(), info.height())
            .fps(info.fps())
            .par(info.par())
            .interlace_mode(info.interlace_mode())
            .build()
            .map_err(|e| fail(&e))?;
    let mut src = gst::Buffer::with_size(src_info.size()).map_err(|e| fail(&e))?;
    {
        let b = src.get_mut().expect("new buffer");
        let mut map = b.map_writable().map_err(|e| fail(&e))?;
        for px in map.as_mut_slice().chunks_exact_mut(4) {
            px.copy_from_slice(&[0xff, 0, 0, 0]);
        }
    }
    let src = gst_video::VideoFrame::from_buffer_readable(src, &src_info)
        .map_err(|_| fail(&"mapping failed"))?;
    let dst = gst::Buffer::with_size(info.size()).map_err(|e| fail(&e))?;
    let mut dst = gst_video::VideoFrame::from_buffer_writable(dst, info)
        .map_err(|_| fail(&"mapping failed"))?;
    let conv = gst_video::VideoConverter::new(&src_info, info, None).map_err(|e| fail(&e))?;
    conv.frame(&src, &mut dst);
    Ok(dst.into_buffer())
}

/// Ramps `to` in over its length from `from` (or from silence): a linear
/// crossfade, so an audio switch does not click. Formats other than the
/// common interleaved ones are left as they are (a plain cut).
pub fn crossfade(info: &gst_audio::AudioInfo, from: Option<&[u8]>, to: &mut [u8]) {
    use gst_audio::AudioFormat as F;
    let channels = info.channels() as usize;
    let width = (info.width() / 8) as usize;
    let frames = to.len() / (width * channels).max(1);
    if frames == 0 {
        return;
    }
    let read = |b: &[u8]| -> Option<f64> {
        Some(match info.format() {
            F::S16le => i16::from_le_bytes(b.try_into().ok()?) as f64,
            F::S32le => i32::from_le_bytes(b.try_into().ok()?) as f64,
            F::F32le => f32::from_le_bytes(b.try_into().ok()?) as f64,
            F::F64le => f64::from_le_bytes(b.try_into().ok()?),
            _ => return None,
        })
    };
    let write = |b: &mut [u8], v: f64| match info.format() {
        F::S16le => b.copy_from_slice(&(v.round() as i16).to_le_bytes()),
        F::S32le => b.copy_from_slice(&(v.round() as i32).to_le_bytes()),
        F::F32le => b.copy_from_slice(&(v as f32).to_le_bytes()),
        F::F64le => b.copy_from_slice(&v.to_le_bytes()),
        _ => {}
    };
    if read(&to[..width]).is_none() {
        return;
    }
    for f in 0..frames {
        let w = (f + 1) as f64 / frames as f64;
        for c in 0..channels {
            let at = (f * channels + c) * width;
            let new = read(&to[at..at + width]).unwrap_or(0.0);
            let old = from
                .and_then(|o| o.get(at..at + width))
                .and_then(read)
                .unwrap_or(0.0);
            write(&mut to[at..at + width], old * (1.0 - w) + new * w);
        }
    }
}

/// A burst longer than this is not how the input comes but a catch-up
/// (after a network hiccup): held whole, it would delay that input's sound
/// for good.
pub const MAX_BURST: ClockTime = ClockTime::from_mseconds(500);

/// What an input gave for one output slot.
pub enum Taken {
    /// A whole frame / chunk of the input.
    Full(gst::Buffer),
    /// Audio underrun: what there was, completed with silence.
    Partial(gst::Buffer),
    Empty,
}

/// One input's FIFO. Inputs are consumed in arrival order, one slot's worth
/// per output slot, so jitter up to the queue depth never shows in the output.
///
/// `credit` is what the input delivered since its slots were last taken (at
/// most one burst and a slot): the input's own thread may push that much
/// output itself without draining the jitter allowance held in the queue.
pub enum InputQueue {
    Video {
        frames: VecDeque<gst::Buffer>,
        period: ClockTime,
        credit: ClockTime,
    },
    Audio {
        adapter: gst_base::UniqueAdapter,
        bpf: usize,
        rate: u64,
        chunk_bytes: usize,
        silence: Option<gst::Buffer>,
        /// The largest burst seen: the most audio that arrived at once (a
        /// buffer, or several back to back: a TS input's PES of several
        /// AAC frames, a muxer's interleaving), at most `MAX_BURST`.
        max_in: ClockTime,
        /// The burst arriving now, and when (clock running time) and how
        /// long the last buffer of it came.
        arrived: ClockTime,
        last_arrival: Option<(ClockTime, ClockTime)>,
        /// One output chunk, in time.
        chunk: ClockTime,
        credit: ClockTime,
    },
}

impl InputQueue {
    /// Queues `buf`, which arrived at clock running time `now` (None: no
    /// clock, each buffer counts on its own).
    pub fn push(&mut self, buf: gst::Buffer, now: Option<ClockTime>) {
        match self {
            InputQueue::Video {
                frames,
                period,
                credit,
            } => {
                frames.push_back(buf);
                *credit = (*credit + *period).min(*period * 2);
            }
            InputQueue::Audio {
                adapter,
                bpf,
                rate,
                max_in,
                arrived,
                last_arrival,
                chunk,
                credit,
                ..
            } => {
                let samples = (buf.size() / *bpf) as u64;
                let dur = ClockTime::SECOND
                    .mul_div_ceil(samples, *rate)
                    .unwrap_or_default();
                // Part of the burst when it follows the last buffer sooner
                // than half that buffer's length: a live input in step
                // with its clock spaces them by about their length.
                let same_burst = match (now, *last_arrival) {
                    (Some(now), Some((at, len))) => now < at + len / 2,
                    _ => false,
                };
                if !same_burst {
                    // The burst before is complete: from now on a queue
                    // holds one such (the first of a larger size is cut
                    // to what was known, once).
                    *max_in = (*max_in).max((*arrived).min(MAX_BURST));
                    *arrived = ClockTime::ZERO;
                }
                *last_arrival = now.map(|n| (n, dur));
                *arrived += dur;
                *max_in = (*max_in).max(dur);
                *credit = (*credit + dur).min(*max_in + *chunk);
                adapter.push(buf);
            }
        }
    }

    /// Queued media, in time.
    pub fn level(&self) -> ClockTime {
        match self {
            InputQueue::Video { frames, period, .. } => *period * frames.len() as u64,
            InputQueue::Audio {
                adapter, bpf, rate, ..
            } => ClockTime::SECOND
                .mul_div_floor((adapter.available() / *bpf) as u64, *rate)
                .unwrap_or_default(),
        }
    }

    /// Depth to hold before consuming: one slot, plus one input burst, plus
    /// the jitter allowance.
    pub fn prefill(&self, slot: ClockTime, latency: ClockTime) -> ClockTime {
        let burst = match self {
            InputQueue::Video { period, .. } => *period,
            InputQueue::Audio { max_in, .. } => *max_in,
        };
        slot + burst + latency
    }

    /// Output this input may push from its own thread (see the type).
    pub fn credit(&self) -> ClockTime {
        match self {
            InputQueue::Video { credit, .. } | InputQueue::Audio { credit, .. } => *credit,
        }
    }

    pub fn clear(&mut self) {
        match self {
            InputQueue::Video { frames, credit, .. } => {
                frames.clear();
                *credit = ClockTime::ZERO;
            }
            InputQueue::Audio {
                adapter,
                max_in,
                arrived,
                last_arrival,
                credit,
                ..
            } => {
                adapter.clear();
                *max_in = ClockTime::ZERO;
                *arrived = ClockTime::ZERO;
                *last_arrival = None;
                *credit = ClockTime::ZERO;
            }
        }
    }

    /// Drops the oldest media so that at most `keep` remains (at least one
    /// frame for video). Returns how many frames / bytes went.
    pub fn trim(&mut self, keep: ClockTime) -> usize {
        match self {
            InputQueue::Video { frames, period, .. } => {
                let keep_frames = (keep.nseconds() / period.nseconds().max(1)).max(1) as usize;
                let drop = frames.len().saturating_sub(keep_frames);
                frames.drain(..drop);
                drop
            }
            InputQueue::Audio {
                adapter, bpf, rate, ..
            } => {
                let keep_samples = keep
                    .nseconds()
                    .mul_div_ceil(*rate, ClockTime::SECOND.nseconds())
                    .unwrap_or(0);
                let keep_bytes = keep_samples as usize * *bpf;
                let avail = adapter.available();
                if avail > keep_bytes {
                    let drop = (avail - keep_bytes) / *bpf * *bpf;
                    adapter.flush(drop);
                    drop
                } else {
                    0
                }
            }
        }
    }

    /// Takes one output slot's worth.
    pub fn take(&mut self) -> Taken {
        match self {
            InputQueue::Video {
                frames,
                period,
                credit,
            } => {
                *credit = credit.saturating_sub(*period);
                frames.pop_front().map_or(Taken::Empty, Taken::Full)
            }
            InputQueue::Audio {
                adapter,
                bpf,
                chunk_bytes,
                silence,
                chunk,
                credit,
                ..
            } => {
                *credit = credit.saturating_sub(*chunk);
                let avail = adapter.available() / *bpf * *bpf;
                if avail >= *chunk_bytes {
                    return adapter
                        .take_buffer(*chunk_bytes)
                        .map_or(Taken::Empty, Taken::Full);
                }
                if avail == 0 {
                    return Taken::Empty;
                }
                let (Ok(part), Some(silence)) = (adapter.take_buffer(avail), silence.as_ref())
                else {
                    return Taken::Empty;
                };
                let mut out = silence.copy_deep().unwrap_or_else(|_| silence.clone());
                {
                    let b = out.make_mut();
                    if let (Ok(mut dst), Ok(src)) = (b.map_writable(), part.map_readable()) {
                        dst.as_mut_slice()[..avail].copy_from_slice(&src);
                    }
                }
                Taken::Partial(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    #[test]
    fn refuses_encoded_and_variable_rate() {
        init();
        let e = Format::from_caps(&gst::Caps::builder("video/x-h264").build()).unwrap_err();
        assert!(e.contains("raw video or raw audio only"), "{e}");
        let vfr = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 64, 48)
            .fps(gst::Fraction::new(0, 1))
            .build()
            .unwrap();
        let e = Format::from_caps(&vfr.to_caps().unwrap()).unwrap_err();
        assert!(e.contains("framerate"), "{e}");
    }

    #[test]
    fn layout_fields_decide_compatibility() {
        init();
        let base = "video/x-raw,format=I420,width=64,height=48,framerate=25/1";
        let f = |c: &str| Format::from_caps(&c.parse().unwrap()).unwrap();
        let a = f(base);
        let b = f(&format!("{base},colorimetry=bt709,multiview-mode=mono"));
        assert!(a.differences(&b).is_empty());
        let c = f("video/x-raw,format=I420,width=128,height=48,framerate=30/1");
        assert_eq!(
            a.differences(&c),
            vec!["width (64 vs 128)", "framerate (25 vs 30)"]
        );
    }

    #[test]
    fn black_is_black_in_common_formats() {
        init();
        use gst_video::VideoFormat as F;
        for (fmt, expect) in [
            (F::I420, vec![16u8, 128, 128]),
            (F::Nv12, vec![16, 128]),
            (F::Yuy2, vec![16, 128, 16, 128]),
            (F::Rgba, vec![0, 0, 0, 255]),
            (F::Bgrx, vec![0, 0, 0]),
        ] {
            let info = gst_video::VideoInfo::builder(fmt, 16, 8)
                .fps(gst::Fraction::new(25, 1))
                .build()
                .unwrap();
            let f = Format::from_caps(&info.to_caps().unwrap()).unwrap();
            let buf = f.filler().unwrap();
            let frame = gst_video::VideoFrame::from_buffer_readable(buf, &info).unwrap();
            let plane0 = frame.plane_data(0).unwrap();
            match fmt {
                F::I420 => {
                    assert!(plane0.iter().all(|&y| y == expect[0]));
                    assert!(frame.plane_data(1).unwrap().iter().all(|&u| u == 128));
                }
                F::Nv12 => assert!(frame.plane_data(1).unwrap().iter().all(|&c| c == 128)),
                _ => assert_eq!(&plane0[..expect.len()], &expect[..], "{fmt:?}"),
            }
        }
    }

    #[test]
    fn crossfade_ramps_from_old_to_new() {
        init();
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48000, 2)
            .build()
            .unwrap();
        let sample = |v: i16| v.to_le_bytes();
        let old: Vec<u8> = (0..480 * 2).flat_map(|_| sample(1000)).collect();
        let mut new: Vec<u8> = (0..480 * 2).flat_map(|_| sample(3000)).collect();
        crossfade(&info, Some(&old), &mut new);
        let at = |b: &[u8], f: usize| i16::from_le_bytes([b[f * 4], b[f * 4 + 1]]);
        assert!((at(&new, 0) - 1000).abs() <= 5, "{}", at(&new, 0));
        assert_eq!(at(&new, 239), 2000);
        assert_eq!(at(&new, 479), 3000);
        // From silence: a fade-in.
        let mut new: Vec<u8> = (0..480 * 2).flat_map(|_| sample(3000)).collect();
        crossfade(&info, None, &mut new);
        assert!(at(&new, 0) < 10);
        assert_eq!(at(&new, 479), 3000);
    }

    #[test]
    fn audio_chunks_and_underrun_padding() {
        init();
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, 48000, 2)
            .build()
            .unwrap();
        let f = Format::from_caps(&info.to_caps().unwrap()).unwrap();
        assert_eq!(f.grid_rate(), (48000, 480));
        let mut q = f.new_queue();
        q.push(gst::Buffer::from_mut_slice(vec![1u8; 4 * 720]), None);
        assert_eq!(q.level(), ClockTime::from_mseconds(15));
        assert!(matches!(q.take(), Taken::Full(b) if b.size() == 480 * 4));
        match q.take() {
            Taken::Partial(b) => {
                let m = b.map_readable().unwrap();
                assert_eq!(m.len(), 480 * 4);
                assert!(m[..240 * 4].iter().all(|&x| x == 1));
                assert!(m[240 * 4..].iter().all(|&x| x == 0));
            }
            _ => panic!("expected a padded chunk"),
        }
        assert!(matches!(q.take(), Taken::Empty));
    }
}
