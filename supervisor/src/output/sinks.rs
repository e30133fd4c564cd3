//! Where an output's parsed streams go, by kind: a muxer and its sink
//! (SRT, UDP, RTMP, files), hlssink2, splitmuxsink; and the names of
//! recordings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use gst::prelude::*;

use super::{make, playlist, scte35, Fence, HlsPlaylist};
use crate::uri::{Container, OutputKind};

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
            scte35::enable(&m);
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

/// Where one track's parsed streams go for `kind`: a muxer's or a bin's
/// request pads, and whether timestamps start at zero.
pub(super) fn sink_for(
    pipeline: &gst::Pipeline,
    kind: &OutputKind,
    target: &mut Option<PathBuf>,
    fence: Option<&Arc<Fence>>,
    hls: HlsPlaylist,
) -> anyhow::Result<(gst::Element, gst::Element, bool)> {
    // The last element before the network or the disk checks the fence
    // too: what a muxer held back must not leave after it closed.
    let guard = |sink: &gst::Element| {
        if let (Some(f), Some(pad)) = (fence, sink.static_pad("sink")) {
            f.guard(&pad);
        }
    };
    Ok(match kind {
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
            guard(&sink);
            (mux.clone(), mux, false)
        }
        OutputKind::Udp {
            host,
            port,
            ttl,
            iface,
            multicast_loop,
        } => {
            let mux = muxer(Container::Ts)?;
            let sink = make("udpsink")?;
            udp_sink(&sink, host, *port, *ttl, iface.as_deref(), *multicast_loop)?;
            pipeline.add_many([&mux, &sink])?;
            mux.link(&sink)?;
            guard(&sink);
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
            guard(&sink);
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
            let start = nonstop_api::now_us() / 1_000_000;
            sink.set_property("location", format!("{dir}/segment-{start}-%05d.ts"));
            sink.set_property("playlist-location", format!("{dir}/index.m3u8"));
            sink.set_property("target-duration", segment.as_secs().max(1) as u32);
            sink.set_property("playlist-length", *playlist);
            sink.set_property("max-files", *playlist + 4);
            playlist::attach(&sink, hls.sequence, hls.breaks, hls.first);
            scte35::enable_hls(&sink);
            pipeline.add(&sink)?;
            *target = Some(PathBuf::from(dir));
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
                    guard(&sink);
                    *target = Some(file);
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
                    *target = Some(pattern);
                    (sink.clone(), sink, true)
                }
            }
        }
    })
}

/// Sets up udpsink for `host:port` and a udp:// output's options: `ttl`
/// is udpsink's `ttl-mc` for a multicast group (udpsink's default 1 keeps
/// it on the local network) and `ttl` otherwise; `iface` (checked to
/// exist, so a typo fails with its name rather than GStreamer's
/// "could not set multicast interface") and `loop` apply to groups.
fn udp_sink(
    sink: &gst::Element,
    host: &str,
    port: u16,
    ttl: Option<u8>,
    iface: Option<&str>,
    multicast_loop: Option<bool>,
) -> anyhow::Result<()> {
    sink.set_property("host", host);
    sink.set_property("port", i32::from(port));
    sink.set_property("sync", false);
    let multicast = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_multicast());
    if let Some(t) = ttl {
        sink.set_property(if multicast { "ttl-mc" } else { "ttl" }, i32::from(t));
    }
    if let Some(i) = iface {
        let c = std::ffi::CString::new(i)?;
        // SAFETY: a NUL-terminated string we own, read only.
        if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
            return Err(anyhow!(
                "multicast interface \"{i}\" does not exist on this machine"
            ));
        }
        sink.set_property("multicast-iface", i);
    }
    if let Some(l) = multicast_loop {
        sink.set_property("loop", l);
    }
    Ok(())
}
