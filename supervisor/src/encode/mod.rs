//! Encoding. Video: each `[[channel.encoder]]` is a rendition; each of its
//! instances (one, or two with redundancy) runs in its own pipeline fed
//! with the switch's raw frames, so an encoder that errors or hangs is
//! torn down and rebuilt without touching the channel. Which instance the
//! outputs carry is the [`selector`]'s job. Audio: one AAC encoder in the
//! channel pipeline, shared by every rendition.
//!
//! ```text
//! raw frames ══► appsrc → [scale] → convert → [upload] → encoder → parse → appsink ══► selector
//! ```

pub mod backend;
pub mod latency;
pub mod probe;
pub mod schedule;
pub mod selector;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use gst::prelude::*;
use gst_app::{AppSink, AppSrc};

use crate::config::{AudioFormat, Codec, Encoder, Profile};
use backend::{Plan, Value};
use schedule::{Requests, Schedule, Served};

/// AAC encoders in order of preference; the first present is used.
const AAC_ENCODERS: [&str; 3] = ["avenc_aac", "fdkaacenc", "voaacenc"];

/// Fault injection states (an instance's `fault` switch).
pub const FAULT_NONE: u8 = 0;
/// Drop every frame before the encoder: it stops producing.
pub const FAULT_STALL: u8 = 1;
/// Post an error from the encoder element, as a crashing encoder does.
pub const FAULT_ERROR: u8 = 2;

pub fn raw_caps(size: (u32, u32), fps: (u32, u32)) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", size.0 as i32)
        .field("height", size.1 as i32)
        .field("framerate", gst::Fraction::new(fps.0 as i32, fps.1 as i32))
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build()
}

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    crate::element::make(factory, None)
}

fn capsfilter(caps: &str) -> anyhow::Result<gst::Element> {
    let caps: gst::Caps = caps.parse().map_err(|_| anyhow!("invalid caps {caps}"))?;
    Ok(gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()?)
}

/// Sets `props` on `element`, checking each value against the property
/// first: an unknown name, enum nick or out-of-range value is an error that
/// says so, never a panic (glib's setters abort on those).
fn apply(
    element: &gst::Element,
    props: &[(&'static str, Value)],
    optional: &[&'static str],
) -> anyhow::Result<()> {
    let factory = element
        .factory()
        .map_or("encoder".into(), |f| f.name().to_string());
    for (name, value) in props {
        let Some(pspec) = element.find_property(name) else {
            if optional.contains(name) {
                continue;
            }
            return Err(anyhow!("{factory} has no property \"{name}\""));
        };
        let v: gst::glib::Value = match value {
            Value::U32(v) => v.to_value(),
            Value::I32(v) => v.to_value(),
            Value::Bool(v) => v.to_value(),
            Value::Str(v) => v.to_value(),
            Value::Nick(n) => gst::glib::Value::deserialize_with_pspec(n, &pspec)
                .map_err(|_| anyhow!("{factory} property \"{name}\" has no value \"{n}\""))?,
        };
        let v = if v.type_() == pspec.value_type() {
            v
        } else {
            v.transform_with_type(pspec.value_type())
                .map_err(|_| anyhow!("{factory} property \"{name}\" does not take {value:?}"))?
        };
        if !pspec.value_is_valid(&v) {
            return Err(anyhow!(
                "{factory} property \"{name}\": {value:?} is out of its range"
            ));
        }
        element.set_property_from_value(name, &v);
    }
    Ok(())
}

/// videoconvert → [upload → memory caps] → encoder → output caps → parser.
/// The encoder element is named `encoder`.
pub fn encoder_elements(plan: &Plan) -> anyhow::Result<Vec<gst::Element>> {
    let mut v = vec![make("videoconvert")?];
    if let Some(format) = plan.input_format {
        v.push(capsfilter(&format!("video/x-raw,format={format}"))?);
    }
    if let Some(up) = plan.upload {
        v.push(make(up)?);
    }
    if let Some(mem) = plan.memory {
        v.push(capsfilter(mem)?);
    }
    let enc = gst::ElementFactory::make(plan.factory)
        .name("encoder")
        .build()
        .with_context(|| format!("encoder element \"{}\" is missing", plan.factory))?;
    apply(&enc, &plan.properties, &plan.optional)?;
    v.push(enc);
    v.push(capsfilter(&plan.output_caps)?);
    let parse = make(plan.parser)?;
    // Parameter sets with every keyframe: any output may start at any.
    parse.set_property("config-interval", -1i32);
    v.push(parse);
    Ok(v)
}

/// What an encoder instance's streaming threads record: atomics only.
#[derive(Debug, Default)]
pub struct InstanceStats {
    /// Monotonic ns of the last encoded frame (0: none yet).
    pub last_output: AtomicU64,
    pub frames: AtomicU64,
    /// [`FAULT_NONE`], [`FAULT_STALL`] or [`FAULT_ERROR`].
    pub fault: AtomicU8,
}

/// A built (not yet started) encoder instance pipeline.
pub struct Instance {
    pub pipeline: gst::Pipeline,
    /// Where the channel's raw frames go.
    pub input: AppSrc,
    pub output: AppSink,
    pub encoder: gst::Element,
}

/// What an encoder instance encodes: the backend plan, the channel's raw
/// caps, the rendition's size, the frame rate and the keyframe schedule.
pub struct Spec<'a> {
    pub plan: &'a Plan,
    pub input_caps: &'a gst::Caps,
    pub size: (u32, u32),
    pub fps: (u32, u32),
    pub schedule: Schedule,
}

/// Builds one encoder instance: `appsrc` (the channel's raw frames) →
/// scale to the rendition's size → the plan's elements → `appsink`.
/// Keyframes are forced on the schedule and from `force` on; the fault
/// switch in `stats` acts in front of the encoder.
pub fn instance(
    name: &str,
    spec: &Spec,
    stats: &Arc<InstanceStats>,
    force: &Arc<Requests>,
) -> anyhow::Result<Instance> {
    let Spec {
        plan,
        input_caps,
        size,
        fps,
        schedule,
    } = *spec;
    let pipeline = gst::Pipeline::with_name(name);
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    // One second of frames: an encoder starved of CPU for a moment (a
    // loaded box) catches up instead of losing frames. The chaos harness
    // saw 80-120 ms timestamp steps with 8 frames.
    let depth = (fps.0 / fps.1.max(1)).max(8) as u64;
    // An encoder that falls further behind loses the oldest frames, not the
    // channel.
    let input = crate::element::leaky_appsrc("raw", Some(input_caps), true, depth);
    let scale = make("videoscale")?;
    let sized = gst::ElementFactory::make("capsfilter")
        .property("caps", raw_caps(size, fps))
        .build()?;
    let output = AppSink::builder()
        .name("encoded")
        .sync(false)
        .enable_last_sample(false)
        .build();
    let mut chain: Vec<gst::Element> = vec![input.clone().upcast(), scale, sized];
    chain.extend(encoder_elements(plan)?);
    chain.push(output.clone().upcast());
    pipeline.add_many(&chain)?;
    gst::Element::link_many(&chain).context("linking the encoder")?;
    let encoder = pipeline
        .by_name("encoder")
        .ok_or_else(|| anyhow!("no encoder element"))?;
    force_keyframes(&input, schedule, force.clone());
    fault_switch(&input, &encoder, stats);
    Ok(Instance {
        pipeline,
        input,
        output,
        encoder,
    })
}

/// Before each frame that opens a GOP, a downstream force-key-unit event
/// into the chain, in order with the frame. Also on the frames `force`
/// asks for (an output that starts wants a keyframe now; a splice point
/// wants an IDR): every instance of the rendition reads the same
/// requests, so they all force the same frame. (Upstream
/// force-key-unit events are not used: GstVideoEncoder times them on its
/// output segment and would then ignore every later scheduled request.)
fn force_keyframes(src: &AppSrc, schedule: Schedule, force: Arc<Requests>) {
    let Some(pad) = src.static_pad("src") else {
        return;
    };
    let count = std::sync::atomic::AtomicU32::new(0);
    let served = Served::default();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let requested = force.wanted(pts.nseconds(), schedule.frame, &served);
        if schedule.is_boundary(pts.nseconds()) || requested {
            if let Some(peer) = pad.peer() {
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                // No running time: "the next frame", which is this one (the
                // event travels in order just ahead of it). A timed request
                // is compared by GstVideoEncoder 1.22 with its output
                // running time (shifted by 1000 h) and ignored after the
                // first.
                let ev = gst_video::DownstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .count(n)
                    .build();
                let _ = peer.send_event(ev);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// The fault switch: `stall` drops frames on their way to the encoder (at
/// the instance's input: dropping in a sink pad's chain trips a GStreamer
/// 1.22 bug); `error` has the encoder post an error once, as a crashing
/// encoder would.
fn fault_switch(input: &AppSrc, encoder: &gst::Element, stats: &Arc<InstanceStats>) {
    let Some(pad) = input.static_pad("src") else {
        return;
    };
    let stats = stats.clone();
    let weak = encoder.downgrade();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        match stats.fault.load(Ordering::Relaxed) {
            FAULT_STALL => gst::PadProbeReturn::Drop,
            FAULT_ERROR => {
                stats.fault.store(FAULT_STALL, Ordering::Relaxed);
                if let Some(enc) = weak.upgrade() {
                    gst::element_error!(
                        enc,
                        gst::StreamError::Encode,
                        ["injected fault: the encoder failed (test or drill)"]
                    );
                }
                gst::PadProbeReturn::Drop
            }
            _ => gst::PadProbeReturn::Ok,
        }
    });
}

/// The AAC encoder present on this machine.
pub fn aac_factory() -> anyhow::Result<&'static str> {
    AAC_ENCODERS
        .into_iter()
        .find(|f| gst::ElementFactory::find(f).is_some())
        .ok_or_else(|| {
            anyhow!(
                "no AAC encoder: need one of {} (install gstreamer1.0-libav)",
                AAC_ENCODERS.join(", ")
            )
        })
}

/// avenc_aac, fdkaacenc and voaacenc all take `bitrate` in bit/s.
/// avenc_aac gets libavcodec's `fast` coder, the ffmpeg command's own
/// default: GStreamer leaves it on `twoloop`, which costs 1.7 times the
/// CPU (60 s of pink noise: 1.53 against 0.90 s here) for a difference
/// few hear at 96 kbit/s and up, and a channel runs an encoder per track.
pub fn aac_properties(factory: &str, a: &AudioFormat) -> Vec<(&'static str, Value)> {
    let bps = a.bitrate.saturating_mul(1000).min(i32::MAX as u32);
    let mut p = vec![("bitrate", Value::I32(bps as i32))];
    if factory == "avenc_aac" {
        p.push(("aac-coder", Value::Nick("fast")));
    }
    p
}

/// convert → resample → AAC encoder → aacparse, for audio track `track`
/// (its encoder is `aenc`, `aenc_1`, …).
pub fn audio_chain(a: &AudioFormat, track: usize) -> anyhow::Result<Vec<gst::Element>> {
    let factory = aac_factory()?;
    let enc = gst::ElementFactory::make(factory)
        .name(crate::element::track_name("aenc", track))
        .build()?;
    apply(&enc, &aac_properties(factory, a), &[])?;
    Ok(vec![
        make("audioconvert")?,
        make("audioresample")?,
        enc,
        make("aacparse")?,
    ])
}

/// Picks the backend of every encoder instance of channel `c` (probing
/// the registry and trial encodes). Errors name the config place.
pub fn resolve(
    cfg: &crate::config::Config,
    c: usize,
) -> Result<Vec<Vec<probe::Choice>>, Vec<crate::config::ConfigError>> {
    let ch = &cfg.channels[c];
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (e, enc) in ch.encoders.iter().enumerate() {
        let size = enc.size(&ch.video);
        let mut wanted = vec![(
            enc.backend(),
            "backend",
            enc.backend.as_ref().map(|b| b.span()),
        )];
        if enc.redundancy != crate::config::Redundancy::None {
            wanted.push((
                enc.backup_backend(),
                "backup_backend",
                enc.backup_backend.as_ref().map(|b| b.span()),
            ));
        }
        let mut choices = Vec::new();
        for (backend, key, span) in wanted {
            match probe::choose(
                &probe::Registry,
                backend,
                enc.fallback,
                enc,
                size,
                ch.video.framerate,
            ) {
                Ok(choice) => choices.push(choice),
                Err(message) => {
                    let span = span
                        .or(enc.id.as_ref().map(|i| i.span()))
                        .unwrap_or(ch.id.span());
                    errors.push(cfg.error_at(
                        span,
                        format!("channel[{c}].encoder[{e}].{key}"),
                        message,
                    ));
                }
            }
        }
        out.push(choices);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The config errors only the encoders can find without probing: a
/// backend named for a codec it has no element for (`x265` with h264).
/// Checked with the config, before anything starts (`daemon::load`,
/// `nonstopd check`); config/ itself knows no element names.
pub fn check_backends(cfg: &crate::config::Config) -> Vec<crate::config::ConfigError> {
    let mut errors = Vec::new();
    for (c, ch) in cfg.channels.iter().enumerate() {
        for (e, enc) in ch.encoders.iter().enumerate() {
            for (key, b) in [
                ("backend", &enc.backend),
                ("backup_backend", &enc.backup_backend),
            ] {
                let Some(b) = b else { continue };
                let backend = *b.get_ref();
                if backend != crate::config::Backend::Auto
                    && backend::factories(backend, enc.codec).is_empty()
                {
                    errors.push(cfg.error_at(
                        b.span(),
                        format!("channel[{c}].encoder[{e}].{key}"),
                        format!("{} cannot encode {}", backend.name(), enc.codec.name()),
                    ));
                }
            }
        }
    }
    errors
}

/// The RFC 6381 codecs string of a rendition plus AAC-LC (HLS `CODECS`),
/// with the level its size and rate need.
pub fn codecs_string(e: &Encoder, size: (u32, u32), fps: (u32, u32)) -> String {
    let rate = size.0 as u64 * size.1 as u64 * fps.0 as u64 / fps.1.max(1) as u64;
    let video = match e.codec {
        Codec::H264 => {
            let profile = match e.profile() {
                Profile::Baseline => "42e0",
                Profile::Main => "4d40",
                _ => "6400",
            };
            // Levels by luma samples per second (H.264 table A-1).
            let level = match rate {
                0..=27_648_000 => 0x1f,           // 3.1: 720p30
                27_648_001..=62_914_560 => 0x28,  // 4.0: 1080p30, 720p60
                62_914_561..=133_693_440 => 0x2a, // 4.2: 1080p60
                _ => 0x33,                        // 5.1
            };
            format!("avc1.{profile}{level:02x}")
        }
        Codec::H265 => {
            let (p, c) = match e.profile() {
                Profile::Main10 => (2, 4),
                _ => (1, 6),
            };
            let level = match rate {
                0..=33_177_600 => 93,            // 3.1
                33_177_601..=66_846_720 => 120,  // 4.0
                66_846_721..=133_693_440 => 123, // 4.1
                _ => 150,                        // 5.0
            };
            format!("hvc1.{p}.{c}.L{level}.B0")
        }
    };
    format!("{video},mp4a.40.2")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Backend;

    #[test]
    fn a_backend_without_an_element_for_the_codec_is_a_config_error() {
        let text = |backend: &str| {
            format!(
                "[[channel]]\nid = \"a\"\nvideo = {{ width = 320, height = 240, framerate = 25 }}\n\
                 [[channel.input]]\nid = \"i\"\nuri = \"test://ball\"\n\
                 [channel.encoder]\nbackend = \"{backend}\"\n\
                 [[channel.output]]\nid = \"o\"\nuri = \"udp://127.0.0.1:5000\"\n"
            )
        };
        let cfg = crate::config::Config::parse("c.toml", &text("x265")).unwrap();
        let errors: Vec<String> = check_backends(&cfg)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            ["c.toml:8:11: channel[0].encoder[0].backend: x265 cannot encode h264"]
        );
        let cfg = crate::config::Config::parse("c.toml", &text("x264")).unwrap();
        assert!(check_backends(&cfg).is_empty());
    }

    #[test]
    fn codecs_strings_follow_profile_and_level() {
        let e = Encoder::default();
        assert_eq!(
            codecs_string(&e, (1280, 720), (25, 1)),
            "avc1.64001f,mp4a.40.2"
        );
        assert_eq!(
            codecs_string(&e, (1920, 1080), (50, 1)),
            "avc1.64002a,mp4a.40.2"
        );
        let e = Encoder {
            codec: Codec::H265,
            ..Encoder::default()
        };
        assert_eq!(
            codecs_string(&e, (1920, 1080), (25, 1)),
            "hvc1.1.6.L120.B0,mp4a.40.2"
        );
    }

    #[test]
    fn aac_bitrate_is_in_bits_per_second() {
        let a = AudioFormat {
            bitrate: 96,
            ..AudioFormat::default()
        };
        assert_eq!(
            aac_properties("voaacenc", &a),
            vec![("bitrate", Value::I32(96_000))]
        );
        assert_eq!(
            aac_properties("avenc_aac", &a),
            vec![
                ("bitrate", Value::I32(96_000)),
                ("aac-coder", Value::Nick("fast"))
            ]
        );
        gst::init().unwrap();
        let enc = audio_chain(&a, 0).unwrap().remove(2);
        assert_eq!(enc.property::<i32>("bitrate"), 96_000);
        if enc.factory().is_some_and(|f| f.name() == "avenc_aac") {
            let coder = enc.property_value("aac-coder").serialize().unwrap();
            assert_eq!(coder.as_str(), "fast");
        }
    }

    #[test]
    fn the_x264_plan_sets_real_properties() {
        gst::init().unwrap();
        let e = Encoder {
            video_bitrate: 3500,
            ..Encoder::default()
        };
        let plan = backend::plan(Backend::X264, "x264enc", &e, (25, 1));
        let v = encoder_elements(&plan).unwrap();
        let enc = v.iter().find(|e| e.name() == "encoder").unwrap();
        assert_eq!(enc.property::<u32>("bitrate"), 3500);
        assert_eq!(enc.property::<u32>("key-int-max"), 50);
        assert_eq!(
            enc.property::<String>("option-string"),
            "scenecut=0:nal-hrd=cbr"
        );
    }

    #[test]
    fn an_unknown_property_is_an_error_not_a_panic() {
        gst::init().unwrap();
        let mut plan = backend::plan(Backend::X264, "x264enc", &Encoder::default(), (25, 1));
        plan.properties.push(("no-such-thing", Value::U32(1)));
        let err = encoder_elements(&plan).unwrap_err().to_string();
        assert!(
            err.contains("x264enc has no property \"no-such-thing\""),
            "{err}"
        );
    }
}
