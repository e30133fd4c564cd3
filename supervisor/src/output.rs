//! Output pipelines: one per destination, fed from the channel's encoded
//! stream, isolated so that a failed destination touches nothing else.
//!
//! ```text
//! channel: encoders → appsink ══ Fanout ══► appsrc (video) ┐
//!                                           appsrc (audio) ┴► parse → mux → sink
//! ```
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

use crate::uri::{Container, OutputKind};

/// Encoded frames an output may hold while its destination is slow; beyond
/// that the oldest go (this output only; the others never wait for it).
const QUEUE_BUFFERS: u64 = 250;

/// The entry points of one running output pipeline.
pub struct Feed {
    video: AppSrc,
    audio: AppSrc,
    /// Waiting for the first keyframe until set.
    started: AtomicBool,
    /// Subtracted from timestamps (containers that start at zero); u64::MAX
    /// until the first keyframe sets it.
    base: AtomicU64,
    rebase: bool,
    /// Encoded bytes accepted by the output so far.
    pub bytes: Arc<AtomicU64>,
}

impl Feed {
    fn push(&self, src: &AppSrc, buffer: &gst::Buffer, caps: Option<&gst::Caps>, video: bool) {
        if !self.started.load(Ordering::Acquire) {
            if !video || buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                return;
            }
            let first = buffer.dts().or(buffer.pts()).map_or(0, |t| t.nseconds());
            self.base.store(first, Ordering::Relaxed);
            self.started.store(true, Ordering::Release);
        }
        if let (None, Some(caps)) = (src.caps(), caps) {
            src.set_caps(Some(caps));
        }
        let buffer = if self.rebase {
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
    }
}

/// The sample's buffer with its timestamps as channel running time: the
/// encoders shift theirs (x264enc by 1000 h), and every output must see
/// video and audio on the same timeline. A DTS before the start (B-frames)
/// is dropped; the muxer derives it.
fn running_time(sample: &gst::Sample) -> Option<gst::Buffer> {
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

/// Hands the channel's encoded samples to every running output. The lock
/// is only contended when an output starts or stops.
#[derive(Default)]
pub struct Fanout {
    feeds: Mutex<Vec<(u64, Arc<Feed>)>>,
}

impl Fanout {
    fn each(&self, f: impl Fn(&Feed)) {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        for (_, feed) in feeds.iter() {
            f(feed);
        }
    }

    /// One encoded sample from the channel, to every running output.
    pub fn push(&self, sample: &gst::Sample, video: bool) {
        let Some(buffer) = running_time(sample) else {
            return;
        };
        let caps = sample.caps_owned();
        self.each(|f| {
            let src = if video { &f.video } else { &f.audio };
            f.push(src, &buffer, caps.as_ref(), video)
        });
    }

    /// The channel ended a stream: end it in every output, so muxers
    /// finalize once both streams ended.
    pub fn eos(&self, video: bool) {
        self.each(|f| {
            let _ = if video { &f.video } else { &f.audio }.end_of_stream();
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

/// A built (not yet started) output pipeline.
pub struct Egress {
    pub pipeline: gst::Pipeline,
    pub feed: Arc<Feed>,
    /// Where it writes, for logs (files get a fresh name per start).
    pub target: Option<PathBuf>,
}

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    gst::ElementFactory::make(factory).build().with_context(|| {
        format!("GStreamer element \"{factory}\" is missing; is its plugin installed?")
    })
}

fn appsrc(name: &str) -> AppSrc {
    let src = AppSrc::builder()
        .name(name)
        .format(gst::Format::Time)
        .is_live(false)
        .max_buffers(QUEUE_BUFFERS)
        .max_bytes(0)
        .max_time(gst::ClockTime::ZERO)
        .build();
    src.set_property_from_str("leaky-type", "downstream");
    src
}

/// Counts bytes leaving an appsrc: the output's progress, judged by data
/// accepted downstream rather than by connection state.
fn count_bytes(src: &AppSrc, bytes: &Arc<AtomicU64>) {
    let bytes = bytes.clone();
    if let Some(pad) = src.static_pad("src") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                bytes.fetch_add(b.size() as u64, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
}

/// The first free name for a recording: `path` itself, else `stem-1.ext`,
/// `stem-2.ext`, …: a restart never overwrites what was recorded.
pub fn fresh_file(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_owned();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("rec");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("ts");
    (1u32..)
        .map(|n| path.with_file_name(format!("{stem}-{n}.{ext}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.to_owned())
}

/// The first segment index not yet on disk for `stem-%05d.ext`.
pub fn next_segment_index(path: &Path) -> u32 {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("rec");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("ts");
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_prefix(&format!("{stem}-"))?
                .strip_suffix(&format!(".{ext}"))?
                .parse::<u32>()
                .ok()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0)
}

fn muxer(container: Container) -> anyhow::Result<gst::Element> {
    Ok(match container {
        Container::Ts => {
            let m = make("mpegtsmux")?;
            m.set_property("alignment", 7i32);
            m
        }
        Container::Mp4 => {
            // Fragmented: what was written stays readable if the process
            // dies before it can finalize.
            let m = make("mp4mux")?;
            m.set_property("fragment-duration", 1000u32);
            m
        }
        Container::Mkv => make("matroskamux")?,
    })
}

/// Builds the pipeline for one output. `name` names it in logs
/// (`channel.output.id`).
pub fn build(name: &str, kind: &OutputKind) -> anyhow::Result<Egress> {
    let pipeline = gst::Pipeline::with_name(name);
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    let vsrc = appsrc("video");
    let asrc = appsrc("audio");
    let vparse = make("h264parse")?;
    let aparse = make("aacparse")?;
    pipeline.add_many([vsrc.upcast_ref(), asrc.upcast_ref(), &vparse, &aparse])?;
    vsrc.link(&vparse)?;
    asrc.link(&aparse)?;
    let bytes = Arc::new(AtomicU64::new(0));
    count_bytes(&vsrc, &bytes);
    count_bytes(&asrc, &bytes);

    // Where the parsed streams go: a muxer's or a bin's request pads.
    let mut target = None;
    let (sink_for_video, sink_for_audio, rebase) = match kind {
        OutputKind::Srt { uri } => {
            let mux = muxer(Container::Ts)?;
            let sink = make("srtsink")?;
            sink.set_property("uri", uri);
            // Failures must surface so the output is rebuilt and restarts
            // on a keyframe; and a listener must not block the stream.
            sink.set_property("auto-reconnect", false);
            sink.set_property("wait-for-connection", false);
            sink.set_property("sync", false);
            pipeline.add_many([&mux, &sink])?;
            mux.link(&sink)?;
            (mux.clone(), mux, false)
        }
        OutputKind::Udp { host, port } => {
            let mux = muxer(Container::Ts)?;
            let sink = make("udpsink")?;
            sink.set_property("host", host);
            sink.set_property("port", *port as i32);
            sink.set_property("sync", false);
            pipeline.add_many([&mux, &sink])?;
            mux.link(&sink)?;
            (mux.clone(), mux, false)
        }
        OutputKind::Rtmp { uri } => {
            let mux = make("flvmux")?;
            mux.set_property("streamable", true);
            let sink = make("rtmp2sink")?;
            sink.set_property("location", uri);
            sink.set_property("sync", false);
            pipeline.add_many([&mux, &sink])?;
            mux.link(&sink)?;
            (mux.clone(), mux, true)
        }
        OutputKind::Hls {
            dir,
            segment,
            playlist,
        } => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create HLS directory {dir}"))?;
            let sink = make("hlssink2")?;
            // A fresh segment name per start: a restart never rewrites a
            // segment a player may still be reading.
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            sink.set_property("location", format!("{dir}/segment-{start}-%05d.ts"));
            sink.set_property("playlist-location", format!("{dir}/index.m3u8"));
            sink.set_property("target-duration", segment.as_secs().max(1) as u32);
            sink.set_property("playlist-length", *playlist);
            sink.set_property("max-files", *playlist + 4);
            pipeline.add(&sink)?;
            target = Some(PathBuf::from(dir));
            (sink.clone(), sink, false)
        }
        OutputKind::File {
            path,
            container,
            segment,
        } => {
            let path = Path::new(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create directory {}", dir.display()))?;
            }
            match segment {
                None => {
                    let file = fresh_file(path);
                    let mux = muxer(*container)?;
                    let sink = make("filesink")?;
                    sink.set_property("location", file.to_string_lossy().as_ref());
                    sink.set_property("sync", false);
                    pipeline.add_many([&mux, &sink])?;
                    mux.link(&sink)?;
                    target = Some(file);
                    (mux.clone(), mux, true)
                }
                Some(every) => {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("rec");
                    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("ts");
                    let pattern = path.with_file_name(format!("{stem}-%05d.{ext}"));
                    let sink = make("splitmuxsink")?;
                    sink.set_property("location", pattern.to_string_lossy().as_ref());
                    sink.set_property("max-size-time", every.as_nanos() as u64);
                    sink.set_property(
                        "start-index",
                        next_segment_index(path).min(i32::MAX as u32) as i32,
                    );
                    sink.set_property("muxer", muxer(*container)?);
                    pipeline.add(&sink)?;
                    target = Some(pattern);
                    (sink.clone(), sink, true)
                }
            }
        }
    };
    link_request(&vparse, &sink_for_video, "video")?;
    link_request(&aparse, &sink_for_audio, "audio")?;
    let feed = Arc::new(Feed {
        video: vsrc,
        audio: asrc,
        started: AtomicBool::new(false),
        base: AtomicU64::new(u64::MAX),
        rebase,
        bytes,
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
            let e = build("t", &kind).unwrap_or_else(|e| panic!("{uri}: {e:#}"));
            assert!(e.pipeline.children().len() >= 5, "{uri}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
