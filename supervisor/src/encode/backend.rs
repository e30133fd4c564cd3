//! One set of encoder settings mapped onto each backend's element: names,
//! units and enums differ (bitrate in kbit/s or bit/s, `key-int-max` or
//! `gop-size` or `keyframe-period`, presets as names or 1–7 levels), and
//! hardware encoders want frames in their own memory, uploaded by their own
//! element. Pure: tested for every backend whether or not its element is
//! installed here.

use crate::config::{Backend, Codec, Encoder, Preset, Profile, RateControl};

/// One property value, as the mapping sets it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U32(u32),
    I32(i32),
    Bool(bool),
    Str(String),
    /// An enum or flags value given by its nick.
    Nick(&'static str),
}

/// How to build one encoder on one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub backend: Backend,
    pub factory: &'static str,
    /// Element that moves system-memory frames into the encoder's memory.
    pub upload: Option<&'static str>,
    /// The caps between upload and encoder (`video/x-raw(memory:…)`).
    pub memory: Option<&'static str>,
    pub properties: Vec<(&'static str, Value)>,
    /// Properties the element may lack (installed only when the device
    /// supports them); skipped then.
    pub optional: Vec<&'static str>,
    /// Raw format the encoder needs (10-bit for main10), before upload.
    pub input_format: Option<&'static str>,
    /// Caps after the encoder: codec, stream format and profile.
    pub output_caps: String,
    pub parser: &'static str,
}

/// The element factories that implement `backend` for `codec`, preferred
/// first. Empty: the backend cannot do this codec.
pub fn factories(backend: Backend, codec: Codec) -> &'static [&'static str] {
    use {Backend as B, Codec as C};
    match (backend, codec) {
        (B::Nvenc, C::H264) => &["nvautogpuh264enc", "nvcudah264enc", "nvh264enc"],
        (B::Nvenc, C::H265) => &["nvautogpuh265enc", "nvcudah265enc", "nvh265enc"],
        (B::Va, C::H264) => &["vah264enc", "vah264lpenc"],
        (B::Va, C::H265) => &["vah265enc", "vah265lpenc"],
        (B::Vaapi, C::H264) => &["vaapih264enc"],
        (B::Vaapi, C::H265) => &["vaapih265enc"],
        (B::Qsv, C::H264) => &["qsvh264enc"],
        (B::Qsv, C::H265) => &["qsvh265enc"],
        (B::X264, C::H264) => &["x264enc"],
        (B::X265, C::H265) => &["x265enc"],
        (B::Openh264, C::H264) => &["openh264enc"],
        _ => &[],
    }
}

/// Whether encoder `factory` writes the frames' closed captions (their
/// `cc_data` caption meta) into its stream as A/53 SEI on GStreamer 1.22.
/// docs/encoders.md has the table and where each element does it; the
/// others drop them without a word.
pub fn captions_written(factory: &str) -> bool {
    matches!(
        factory,
        "x264enc" | "vah264enc" | "vah264lpenc" | "qsvh264enc" | "qsvh265enc"
    )
}

/// `auto`: hardware first, then the codec's software encoder.
pub fn auto_order(codec: Codec) -> [Backend; 5] {
    let software = match codec {
        Codec::H264 => Backend::X264,
        Codec::H265 => Backend::X265,
    };
    [
        Backend::Nvenc,
        Backend::Va,
        Backend::Vaapi,
        Backend::Qsv,
        software,
    ]
}

/// The Debian package to install for a backend (for error messages).
pub fn package(backend: Backend) -> &'static str {
    match backend {
        Backend::Nvenc => "gstreamer1.0-plugins-bad and the NVIDIA driver (libnvidia-encode)",
        Backend::Va | Backend::Qsv => "gstreamer1.0-plugins-bad and a VA-API driver",
        Backend::Vaapi => "gstreamer1.0-vaapi and a VA-API driver",
        Backend::X264 => "gstreamer1.0-plugins-ugly",
        Backend::X265 | Backend::Openh264 => "gstreamer1.0-plugins-bad",
        Backend::Auto => "a video encoder plugin",
    }
}

/// The x264 preset scale as a 1 (best quality) … 7 (fastest) level, the
/// unit of VA's and QSV's `target-usage` and VA-API's `quality-level`.
pub fn speed_level(p: Preset) -> u32 {
    match p {
        Preset::Ultrafast | Preset::Superfast => 7,
        Preset::Veryfast => 6,
        Preset::Faster => 5,
        Preset::Fast | Preset::Medium => 4,
        Preset::Slow => 3,
        Preset::Slower => 2,
        Preset::Veryslow => 1,
    }
}

/// The keyframe interval in frames at `fps` (≥ 1).
pub fn gop_frames(e: &Encoder, fps: (u32, u32)) -> u32 {
    let frames = e.keyframe_interval.as_secs_f64() * fps.0 as f64 / fps.1.max(1) as f64;
    (frames.round() as u32).max(1)
}

fn output_caps(codec: Codec, profile: Profile) -> String {
    let media = match codec {
        Codec::H264 => "video/x-h264",
        Codec::H265 => "video/x-h265",
    };
    // Encoders choose the profile from downstream caps. "baseline" means
    // constrained baseline, the only one VA knows and what players expect.
    let name = match profile {
        Profile::Baseline => "constrained-baseline",
        Profile::Main10 => "main-10",
        p => p.name(),
    };
    format!("{media},stream-format=byte-stream,alignment=au,profile={name}")
}

/// NVENC's "kbit/s" are 1024 bit/s.
fn nvenc_kbps(kbps: u32) -> u32 {
    (kbps as u64 * 1000 / 1024) as u32
}

/// The legacy NVENC presets, the only ones in GStreamer 1.22.
fn nvenc_preset(low_latency: bool, level: u32) -> &'static str {
    match (low_latency, level) {
        (true, 5..=7) => "low-latency-hp",
        (true, _) => "low-latency-hq",
        (false, 5..=7) => "hp",
        (false, 4) => "default",
        (false, _) => "hq",
    }
}

/// Maps `e` onto `factory` of `backend`. Keyframes come from the schedule
/// (forced), so each encoder's own GOP is set to the same interval with
/// scene-cut keyframes off where the element allows.
pub fn plan(backend: Backend, factory: &'static str, e: &Encoder, fps: (u32, u32)) -> Plan {
    use Value::*;
    let kbps = e.video_bitrate;
    let gop = gop_frames(e, fps);
    let cbr = e.rate_control == RateControl::Cbr;
    let bframes = if e.low_latency { 0 } else { e.bframes };
    let ten_bit = e.profile() == Profile::Main10;
    let mut upload = None;
    let mut memory = None;
    let properties = match backend {
        Backend::X264 => {
            let mut opts = vec!["scenecut=0".to_owned()];
            if cbr {
                // Real CBR (HRD-conformant, padded), not average bitrate.
                opts.push("nal-hrd=cbr".into());
            }
            let mut p = vec![
                ("bitrate", U32(kbps)),
                ("pass", Nick("cbr")),
                ("key-int-max", U32(gop)),
                ("bframes", U32(bframes)),
                ("speed-preset", Nick(e.preset.name())),
                // One second of VBV buffer: constant enough for CDNs.
                ("vbv-buf-capacity", U32(1000)),
                ("option-string", Str(opts.join(":"))),
            ];
            if e.low_latency {
                p.push(("tune", Nick("zerolatency")));
            }
            p
        }
        Backend::X265 => {
            let mut opts = vec![format!("bframes={bframes}"), "scenecut=0".into()];
            if cbr {
                opts.push(format!(
                    "vbv-maxrate={kbps}:vbv-bufsize={kbps}:strict-cbr=1"
                ));
            }
            let mut p = vec![
                ("bitrate", U32(kbps)),
                ("key-int-max", I32(gop.min(i32::MAX as u32) as i32)),
                ("speed-preset", Nick(e.preset.name())),
                ("option-string", Str(opts.join(":"))),
            ];
            if e.low_latency {
                p.push(("tune", Nick("zerolatency")));
            }
            p
        }
        Backend::Openh264 => vec![
            // bit/s, not kbit/s.
            ("bitrate", U32(kbps.saturating_mul(1000))),
            ("gop-size", U32(gop)),
            // No CBR/VBR split: "bitrate" holds the target.
            ("rate-control", Nick("bitrate")),
            ("enable-frame-skip", Bool(cbr)),
            (
                "complexity",
                Nick(match speed_level(e.preset) {
                    5..=7 => "low",
                    3..=4 => "medium",
                    _ => "high",
                }),
            ),
        ],
        Backend::Nvenc => {
            upload = Some("cudaupload");
            memory = Some(if ten_bit {
                "video/x-raw(memory:CUDAMemory),format=P010_10LE"
            } else {
                "video/x-raw(memory:CUDAMemory),format=NV12"
            });
            let preset = Nick(nvenc_preset(e.low_latency, speed_level(e.preset)));
            let rc = Nick(if cbr { "cbr" } else { "vbr" });
            let gop = I32(gop.min(i32::MAX as u32) as i32);
            if factory == "nvh264enc" || factory == "nvh265enc" {
                // The older nvcodec elements.
                vec![
                    ("bitrate", U32(nvenc_kbps(kbps))),
                    ("rc-mode", rc),
                    ("gop-size", gop),
                    ("bframes", U32(bframes)),
                    ("preset", preset),
                    ("zerolatency", Bool(e.low_latency)),
                ]
            } else {
                // nvcuda* / nvautogpu* (new in 1.22): renamed properties.
                vec![
                    ("bitrate", U32(nvenc_kbps(kbps))),
                    ("rate-control", rc),
                    ("gop-size", gop),
                    ("b-frames", U32(bframes)),
                    ("preset", preset),
                    ("zero-reorder-delay", Bool(e.low_latency)),
                ]
            }
        }
        Backend::Va => {
            upload = Some("vapostproc");
            memory = Some(if ten_bit {
                "video/x-raw(memory:VAMemory),format=P010_10LE"
            } else {
                "video/x-raw(memory:VAMemory),format=NV12"
            });
            vec![
                ("bitrate", U32(kbps)),
                // Offered only for the modes the driver supports.
                ("rate-control", Nick(if cbr { "cbr" } else { "vbr" })),
                ("key-int-max", U32(gop.min(1024))),
                ("b-frames", U32(bframes.min(31))),
                ("target-usage", U32(speed_level(e.preset))),
            ]
        }
        Backend::Vaapi => {
            upload = Some("vaapipostproc");
            memory = Some("video/x-raw(memory:VASurface)");
            vec![
                ("bitrate", U32(kbps)),
                // Its default is cqp, which ignores the bitrate.
                ("rate-control", Nick(if cbr { "cbr" } else { "vbr" })),
                ("keyframe-period", U32(gop)),
                ("max-bframes", U32(bframes.min(10))),
                ("quality-level", U32(speed_level(e.preset))),
            ]
        }
        Backend::Qsv => vec![
            ("bitrate", U32(kbps)),
            ("rate-control", Nick(if cbr { "cbr" } else { "vbr" })),
            ("gop-size", U32(gop.min(65535))),
            ("b-frames", U32(bframes)),
            ("target-usage", U32(speed_level(e.preset))),
            ("low-latency", Bool(e.low_latency)),
        ],
        Backend::Auto => Vec::new(),
    };
    let optional = match backend {
        // Installed only if the GPU / driver supports them.
        Backend::Nvenc => vec!["b-frames", "bframes"],
        Backend::Va => vec!["rate-control"],
        _ => Vec::new(),
    };
    let input_format = match (ten_bit, backend) {
        (false, _) => None,
        (true, Backend::X265) => Some("I420_10LE"),
        (true, _) => Some("P010_10LE"),
    };
    Plan {
        backend,
        factory,
        upload,
        memory,
        properties,
        optional,
        input_format,
        output_caps: output_caps(e.codec, e.profile()),
        parser: match e.codec {
            Codec::H264 => "h264parse",
            Codec::H265 => "h265parse",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn enc(codec: Codec) -> Encoder {
        Encoder {
            codec,
            video_bitrate: 3000,
            keyframe_interval: Duration::from_secs(2),
            bframes: 2,
            low_latency: false,
            preset: Preset::Fast,
            ..Encoder::default()
        }
    }

    fn prop<'a>(p: &'a Plan, name: &str) -> &'a Value {
        &p.properties
            .iter()
            .find(|(k, _)| *k == name)
            .unwrap_or_else(|| panic!("{} has no {name}", p.factory))
            .1
    }

    #[test]
    fn the_encoders_that_write_captions_are_those_of_the_1_22_sources() {
        // Read in GStreamer 1.22.12: gstx264enc.c gst_x264_enc_add_cc,
        // gstvah264enc.c _add_sei_cc (cc-insert, on by default),
        // gstqsvh264enc.cpp / gstqsvh265enc.cpp (cc-insert=insert); no
        // caption code in nvcodec, vaapi, x265, openh264 or vah265enc.
        let mut writing = Vec::new();
        for backend in [
            Backend::Nvenc,
            Backend::Va,
            Backend::Vaapi,
            Backend::Qsv,
            Backend::X264,
            Backend::X265,
            Backend::Openh264,
        ] {
            for codec in [Codec::H264, Codec::H265] {
                for f in factories(backend, codec) {
                    if captions_written(f) {
                        writing.push(*f);
                    }
                }
            }
        }
        assert_eq!(
            writing,
            [
                "vah264enc",
                "vah264lpenc",
                "qsvh264enc",
                "qsvh265enc",
                "x264enc"
            ]
        );
    }

    #[test]
    fn every_backend_gets_bitrate_gop_bframes_and_speed_in_its_own_terms() {
        use Value::*;
        let e = enc(Codec::H264);
        let fps = (50, 1);
        let x264 = plan(Backend::X264, "x264enc", &e, fps);
        assert_eq!(prop(&x264, "bitrate"), &U32(3000));
        assert_eq!(prop(&x264, "key-int-max"), &U32(100));
        assert_eq!(prop(&x264, "bframes"), &U32(2));
        assert_eq!(prop(&x264, "speed-preset"), &Nick("fast"));
        assert_eq!(
            prop(&x264, "option-string"),
            &Str("scenecut=0:nal-hrd=cbr".into())
        );
        assert!(x264.upload.is_none());

        let oh = plan(Backend::Openh264, "openh264enc", &e, fps);
        assert_eq!(
            prop(&oh, "bitrate"),
            &U32(3_000_000),
            "openh264 takes bit/s"
        );
        assert_eq!(prop(&oh, "gop-size"), &U32(100));
        assert_eq!(prop(&oh, "rate-control"), &Nick("bitrate"));
        assert_eq!(prop(&oh, "enable-frame-skip"), &Bool(true));

        let nv = plan(Backend::Nvenc, "nvh264enc", &e, fps);
        assert_eq!(
            prop(&nv, "bitrate"),
            &U32(2929),
            "NVENC kbit/s are 1024 bit/s"
        );
        assert_eq!(prop(&nv, "gop-size"), &I32(100));
        assert_eq!(prop(&nv, "rc-mode"), &Nick("cbr"));
        assert_eq!(prop(&nv, "bframes"), &U32(2));
        assert_eq!(prop(&nv, "preset"), &Nick("default"));
        assert_eq!(nv.upload, Some("cudaupload"));
        assert_eq!(
            nv.memory,
            Some("video/x-raw(memory:CUDAMemory),format=NV12")
        );
        assert!(nv.optional.contains(&"bframes"));

        let nv2 = plan(Backend::Nvenc, "nvcudah264enc", &e, fps);
        assert_eq!(prop(&nv2, "rate-control"), &Nick("cbr"));
        assert_eq!(prop(&nv2, "b-frames"), &U32(2));
        assert_eq!(prop(&nv2, "zero-reorder-delay"), &Bool(false));
        assert_eq!(prop(&nv2, "preset"), &Nick("default"));

        let va = plan(Backend::Va, "vah264enc", &e, fps);
        assert_eq!(prop(&va, "key-int-max"), &U32(100));
        assert_eq!(prop(&va, "bitrate"), &U32(3000));
        assert_eq!(prop(&va, "target-usage"), &U32(4));
        assert_eq!(va.upload, Some("vapostproc"));

        let vaapi = plan(Backend::Vaapi, "vaapih264enc", &e, fps);
        assert_eq!(prop(&vaapi, "keyframe-period"), &U32(100));
        assert_eq!(prop(&vaapi, "max-bframes"), &U32(2));
        assert_eq!(prop(&vaapi, "quality-level"), &U32(4));

        let qsv = plan(Backend::Qsv, "qsvh264enc", &e, fps);
        assert_eq!(prop(&qsv, "gop-size"), &U32(100));
        assert_eq!(prop(&qsv, "low-latency"), &Bool(false));
        assert!(qsv.upload.is_none(), "qsv takes system memory");

        let e = enc(Codec::H265);
        let x265 = plan(Backend::X265, "x265enc", &e, fps);
        assert_eq!(prop(&x265, "key-int-max"), &I32(100));
        assert!(
            matches!(prop(&x265, "option-string"), Str(s) if s.contains("bframes=2") && s.contains("strict-cbr=1"))
        );
        assert_eq!(x265.parser, "h265parse");
        assert!(x265.output_caps.starts_with("video/x-h265"));
        assert_eq!(x265.input_format, None);
    }

    #[test]
    fn limits_of_each_element_are_respected() {
        let mut e = enc(Codec::H264);
        e.keyframe_interval = Duration::from_secs(60);
        e.bframes = 16;
        let va = plan(Backend::Va, "vah264enc", &e, (50, 1));
        assert_eq!(prop(&va, "key-int-max"), &Value::U32(1024));
        let vaapi = plan(Backend::Vaapi, "vaapih264enc", &e, (50, 1));
        assert_eq!(prop(&vaapi, "max-bframes"), &Value::U32(10));
        assert_eq!(prop(&vaapi, "keyframe-period"), &Value::U32(3000));
    }

    #[test]
    fn main10_needs_ten_bit_input() {
        let mut e = enc(Codec::H265);
        e.profile = Some(toml::Spanned::new(0..0, Profile::Main10));
        assert_eq!(
            plan(Backend::X265, "x265enc", &e, (25, 1)).input_format,
            Some("I420_10LE")
        );
        let nv = plan(Backend::Nvenc, "nvh265enc", &e, (25, 1));
        assert_eq!(nv.input_format, Some("P010_10LE"));
        assert!(nv.memory.unwrap().ends_with("P010_10LE"));
        assert!(nv.output_caps.ends_with("profile=main-10"));
    }

    #[test]
    fn low_latency_means_no_bframes_and_the_fast_path() {
        let mut e = enc(Codec::H264);
        e.low_latency = true;
        e.preset = Preset::Ultrafast;
        let x264 = plan(Backend::X264, "x264enc", &e, (25, 1));
        assert_eq!(prop(&x264, "tune"), &Value::Nick("zerolatency"));
        assert_eq!(prop(&x264, "bframes"), &Value::U32(0));
        let nv = plan(Backend::Nvenc, "nvh264enc", &e, (25, 1));
        assert_eq!(prop(&nv, "preset"), &Value::Nick("low-latency-hp"));
        assert_eq!(prop(&nv, "bframes"), &Value::U32(0));
        assert_eq!(prop(&nv, "zerolatency"), &Value::Bool(true));
        let va = plan(Backend::Va, "vah264enc", &e, (25, 1));
        assert_eq!(prop(&va, "target-usage"), &Value::U32(7));
        assert_eq!(prop(&va, "b-frames"), &Value::U32(0));
    }

    #[test]
    fn profiles_and_codecs_go_into_the_output_caps() {
        let mut e = enc(Codec::H264);
        e.profile = Some(toml::Spanned::new(0..0, Profile::Baseline));
        assert_eq!(
            plan(Backend::X264, "x264enc", &e, (25, 1)).output_caps,
            "video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
        );
        let e = enc(Codec::H265);
        assert!(plan(Backend::Va, "vah265enc", &e, (25, 1))
            .output_caps
            .ends_with("profile=main"));
    }

    #[test]
    fn backends_offer_only_their_codecs() {
        assert!(factories(Backend::X264, Codec::H265).is_empty());
        assert!(factories(Backend::Openh264, Codec::H265).is_empty());
        assert_eq!(factories(Backend::X265, Codec::H265), &["x265enc"]);
        assert_eq!(auto_order(Codec::H265)[4], Backend::X265);
        for b in auto_order(Codec::H264) {
            assert!(!factories(b, Codec::H264).is_empty(), "{b:?}");
        }
    }
}
