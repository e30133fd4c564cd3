//! Encoding: the channel's settings mapped onto encoder elements. This
//! stage has one software H.264 encoder (x264enc) and one AAC encoder per
//! channel; hardware backends and ladders plug in here.

use anyhow::{anyhow, Context};
use gst::prelude::*;

use crate::config::{Encoder, VideoFormat};

/// AAC encoders in order of preference; the first present is used.
const AAC_ENCODERS: [&str; 3] = ["avenc_aac", "fdkaacenc", "voaacenc"];

/// One property of an encoder element, as the mapping sets it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U32(u32),
    I32(i32),
    Str(&'static str),
    /// An enum or flags value given by its nick.
    Nick(&'static str),
}

/// The element and properties that carry `settings`: pure, so it can be
/// tested without the element.
pub fn x264_properties(e: &Encoder, v: &VideoFormat) -> Vec<(&'static str, Value)> {
    let mut p = vec![
        ("bitrate", Value::U32(e.video_bitrate)),
        ("key-int-max", Value::U32(keyframe_frames(e, v))),
        ("speed-preset", Value::Nick(e.preset.name())),
    ];
    if e.low_latency {
        // No lookahead, no B-frames: the encoder emits each frame at once.
        p.push(("tune", Value::Nick("zerolatency")));
    }
    p
}

/// The keyframe interval in frames at the channel's frame rate (≥ 1).
pub fn keyframe_frames(e: &Encoder, v: &VideoFormat) -> u32 {
    let (n, d) = v.framerate;
    let frames = e.keyframe_interval.as_secs_f64() * n as f64 / d.max(1) as f64;
    (frames.round() as u32).max(1)
}

/// avenc_aac, fdkaacenc and voaacenc all take `bitrate` in bit/s.
pub fn aac_properties(e: &Encoder) -> Vec<(&'static str, Value)> {
    let bps = e.audio_bitrate.saturating_mul(1000).min(i32::MAX as u32);
    vec![("bitrate", Value::I32(bps as i32))]
}

fn apply(element: &gst::Element, props: &[(&'static str, Value)]) {
    for (name, value) in props {
        match value {
            Value::U32(v) => element.set_property(name, v),
            Value::I32(v) => element.set_property(name, v),
            Value::Str(v) => element.set_property(name, v),
            Value::Nick(v) => element.set_property_from_str(name, v),
        }
    }
}

fn make(factory: &str) -> anyhow::Result<gst::Element> {
    gst::ElementFactory::make(factory).build().with_context(|| {
        format!("encoder element \"{factory}\" is missing; is its plugin installed?")
    })
}

/// convert → x264enc → h264parse (SPS/PPS with every keyframe, so any
/// output can start at any keyframe).
pub fn video_chain(e: &Encoder, v: &VideoFormat) -> anyhow::Result<Vec<gst::Element>> {
    let convert = make("videoconvert")?;
    let enc = gst::ElementFactory::make("x264enc")
        .name("venc")
        .build()
        .context("encoder element \"x264enc\" is missing; install gstreamer1.0-plugins-ugly")?;
    apply(&enc, &x264_properties(e, v));
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    Ok(vec![convert, enc, parse])
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

/// convert → resample → AAC encoder → aacparse.
pub fn audio_chain(e: &Encoder) -> anyhow::Result<Vec<gst::Element>> {
    let factory = aac_factory()?;
    let enc = gst::ElementFactory::make(factory).name("aenc").build()?;
    apply(&enc, &aac_properties(e));
    Ok(vec![
        make("audioconvert")?,
        make("audioresample")?,
        enc,
        make("aacparse")?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use std::time::Duration;

    fn encoder() -> Encoder {
        Encoder {
            video_bitrate: 3500,
            audio_bitrate: 96,
            keyframe_interval: Duration::from_secs(2),
            low_latency: true,
            preset: Preset::Ultrafast,
        }
    }

    fn video(n: u32, d: u32) -> VideoFormat {
        VideoFormat {
            width: 1280,
            height: 720,
            framerate: (n, d),
        }
    }

    #[test]
    fn x264_gets_kbps_gop_in_frames_preset_and_tune() {
        let p = x264_properties(&encoder(), &video(50, 1));
        assert_eq!(
            p,
            vec![
                ("bitrate", Value::U32(3500)),
                ("key-int-max", Value::U32(100)),
                ("speed-preset", Value::Nick("ultrafast")),
                ("tune", Value::Nick("zerolatency")),
            ]
        );
        let mut e = encoder();
        e.low_latency = false;
        assert!(!x264_properties(&e, &video(50, 1))
            .iter()
            .any(|(k, _)| *k == "tune"));
    }

    #[test]
    fn keyframe_interval_rounds_at_fractional_rates() {
        let e = encoder();
        assert_eq!(keyframe_frames(&e, &video(30000, 1001)), 60);
        let mut e = encoder();
        e.keyframe_interval = Duration::from_millis(10);
        assert_eq!(keyframe_frames(&e, &video(25, 1)), 1);
    }

    #[test]
    fn aac_bitrate_is_in_bits_per_second() {
        assert_eq!(
            aac_properties(&encoder()),
            vec![("bitrate", Value::I32(96_000))]
        );
    }

    #[test]
    fn the_mapping_sets_real_properties() {
        gst::init().unwrap();
        let chain = video_chain(&encoder(), &video(25, 1)).unwrap();
        assert_eq!(chain[1].property::<u32>("bitrate"), 3500);
        assert_eq!(chain[1].property::<u32>("key-int-max"), 50);
        let chain = audio_chain(&encoder()).unwrap();
        assert_eq!(chain[2].property::<i32>("bitrate"), 96_000);
    }
}
