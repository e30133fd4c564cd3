//! The `[channel.encoder]` tables: one video encoder per rendition, its
//! codec, backend, rate control, redundancy and injected faults.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::defaults::{
    default_encoder_stall, default_hold_off, default_keyframe_interval, default_true,
    default_video_bitrate,
};
use super::format::VideoFormat;
use super::units::duration;

/// One video encoder (one rendition of the channel), possibly redundant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoder {
    /// Names the rendition for outputs; default `video` (needed when a
    /// channel has several encoders).
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    #[serde(default)]
    pub codec: Codec,
    /// `auto` or an explicit backend.
    #[serde(default)]
    pub backend: Option<Spanned<Backend>>,
    /// An explicit backend that is missing or cannot open falls back to
    /// the `auto` order instead of failing.
    #[serde(default)]
    pub fallback: bool,
    /// Picture size of this rendition; default: the channel's.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Video bitrate in kbit/s.
    #[serde(default = "default_video_bitrate")]
    pub video_bitrate: u32,
    #[serde(default)]
    pub rate_control: RateControl,
    #[serde(default = "default_keyframe_interval", deserialize_with = "duration")]
    pub keyframe_interval: Duration,
    #[serde(default)]
    pub bframes: u32,
    /// Default: `high` (H.264), `main` (H.265).
    #[serde(default)]
    pub profile: Option<Spanned<Profile>>,
    #[serde(default = "default_true")]
    pub low_latency: bool,
    /// Speed against quality, on x264's scale; mapped onto each backend.
    #[serde(default)]
    pub preset: Preset,
    #[serde(default)]
    pub redundancy: Redundancy,
    /// The second encoder's backend; default: the codec's software one.
    #[serde(default)]
    pub backup_backend: Option<Spanned<Backend>>,
    /// An encoder with no output for this long has failed.
    #[serde(default = "default_encoder_stall", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// A rebuilt encoder healthy this long becomes the standby again.
    #[serde(default = "default_hold_off", deserialize_with = "duration")]
    pub hold_off: Duration,
    /// Faults to inject, for tests and drills: the same path as real ones.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    H264,
    H265,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Auto,
    Nvenc,
    Va,
    Vaapi,
    Qsv,
    X264,
    X265,
    Openh264,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Nvenc => "nvenc",
            Backend::Va => "va",
            Backend::Vaapi => "vaapi",
            Backend::Qsv => "qsv",
            Backend::X264 => "x264",
            Backend::X265 => "x265",
            Backend::Openh264 => "openh264",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateControl {
    #[default]
    Cbr,
    Vbr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Baseline,
    Main,
    High,
    Main10,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Baseline => "baseline",
            Profile::Main => "main",
            Profile::High => "high",
            Profile::Main10 => "main10",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Redundancy {
    #[default]
    None,
    ActiveActive,
    ActivePassive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// The encoder stops passing buffers.
    Stall,
    /// The encoder posts an error.
    Error,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Stall => "stall",
            FaultKind::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Instance {
    #[default]
    Primary,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(default)]
    pub instance: Instance,
    /// When, after the channel started.
    #[serde(deserialize_with = "duration")]
    pub at: Duration,
}

impl Encoder {
    pub fn id(&self) -> &str {
        self.id.as_ref().map_or("video", |s| s.get_ref().as_str())
    }

    pub fn backend(&self) -> Backend {
        self.backend
            .as_ref()
            .map_or(Backend::Auto, |b| *b.get_ref())
    }

    pub fn profile(&self) -> Profile {
        self.profile
            .as_ref()
            .map(|p| *p.get_ref())
            .unwrap_or(match self.codec {
                Codec::H264 => Profile::High,
                Codec::H265 => Profile::Main,
            })
    }

    /// The backup instance's backend: as configured, else the codec's
    /// software encoder.
    pub fn backup_backend(&self) -> Backend {
        self.backup_backend
            .as_ref()
            .map(|b| *b.get_ref())
            .unwrap_or(match self.codec {
                Codec::H264 => Backend::X264,
                Codec::H265 => Backend::X265,
            })
    }

    /// The rendition's picture size.
    pub fn size(&self, channel: &VideoFormat) -> (u32, u32) {
        (
            self.width.unwrap_or(channel.width),
            self.height.unwrap_or(channel.height),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Ultrafast,
    Superfast,
    #[default]
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Ultrafast => "ultrafast",
            Preset::Superfast => "superfast",
            Preset::Veryfast => "veryfast",
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
            Preset::Slower => "slower",
            Preset::Veryslow => "veryslow",
        }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            id: None,
            codec: Codec::default(),
            backend: None,
            fallback: false,
            width: None,
            height: None,
            video_bitrate: default_video_bitrate(),
            rate_control: RateControl::default(),
            keyframe_interval: default_keyframe_interval(),
            bframes: 0,
            profile: None,
            low_latency: true,
            preset: Preset::default(),
            redundancy: Redundancy::default(),
            backup_backend: None,
            stall_timeout: default_encoder_stall(),
            hold_off: default_hold_off(),
            faults: Vec::new(),
        }
    }
}

pub(super) fn default_encoders() -> Vec<Encoder> {
    vec![Encoder::default()]
}

/// A table or an array of tables. A visitor, not an untagged enum, so the
/// inner errors (unknown key, bad value) keep their message and place.
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Encoder>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<Encoder>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a [channel.encoder] table or [[channel.encoder]] tables")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Encoder::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(|e| vec![e])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::fixtures::{errors, GOOD, LADDER};
    use crate::config::Config;

    #[test]
    fn a_ladder_with_redundancy_and_backup_destinations() {
        let c = Config::parse("l.toml", LADDER).unwrap();
        let ch = &c.channels[0];
        assert_eq!(ch.encoders.len(), 2);
        assert_eq!(ch.encoders[0].redundancy, Redundancy::ActiveActive);
        assert_eq!(ch.encoders[0].backup_backend(), Backend::X264);
        assert_eq!(ch.encoders[1].size(&ch.video), (640, 360));
        assert_eq!(ch.outputs[1].backup.len(), 1);
        assert_eq!(ch.outputs[1].failover_after, 3);
        assert_eq!(ch.outputs[1].retry_primary, Duration::from_secs(60));
    }

    #[test]
    fn a_single_encoder_table_still_works() {
        let text = GOOD.to_owned() + "\n[channel.encoder]\nvideo_bitrate = 2500\n";
        let c = Config::parse("s.toml", &text).unwrap();
        assert_eq!(c.channels[0].encoders[0].video_bitrate, 2500);
        let text = GOOD.to_owned() + "\n[channel.encoder]\nvideo_bitrat = 2500\n";
        assert!(
            errors(&text)[0].contains("unknown field `video_bitrat`"),
            "{:?}",
            errors(&text)
        );
    }
}
