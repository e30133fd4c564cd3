//! The channel's picture and sound: `video` and `audio` tables, the
//! format every input is normalized to.

use serde::Deserialize;

use super::defaults::{
    default_audio_bitrate, default_channels, default_framerate, default_height, default_rate,
    default_width,
};
use super::units::framerate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoFormat {
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second: `50`, or a fraction such as `"30000/1001"`.
    #[serde(default = "default_framerate", deserialize_with = "framerate")]
    pub framerate: (u32, u32),
}

impl Default for VideoFormat {
    fn default() -> Self {
        Self {
            width: default_width(),
            height: default_height(),
            framerate: default_framerate(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioFormat {
    #[serde(default = "default_rate")]
    pub rate: u32,
    #[serde(default = "default_channels")]
    pub channels: u32,
    /// AAC bitrate in kbit/s: one audio encoder per channel, shared by
    /// every rendition.
    #[serde(default = "default_audio_bitrate")]
    pub bitrate: u32,
}

impl Default for AudioFormat {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            channels: default_channels(),
            bitrate: default_audio_bitrate(),
        }
    }
}

/// One audio track of a channel: `[[channel.audio]]`. A channel written
/// with a single `[channel.audio]` table has one track, `main`, with no
/// language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    pub id: String,
    /// ISO 639-2 code as written (checked by the validation).
    pub language: Option<String>,
    pub format: AudioFormat,
}

/// The id of the one track of a channel without `[[channel.audio]]`.
pub const MAIN_TRACK: &str = "main";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackSpec {
    id: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default = "default_rate")]
    rate: u32,
    #[serde(default = "default_channels")]
    channels: u32,
    #[serde(default = "default_audio_bitrate")]
    bitrate: u32,
}

pub(super) fn default_tracks() -> Vec<AudioTrack> {
    vec![AudioTrack {
        id: MAIN_TRACK.into(),
        language: None,
        format: AudioFormat::default(),
    }]
}

/// `audio`: a table (one track's format) or an array of tables (tracks).
pub(super) fn tracks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<AudioTrack>, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        v @ toml::Value::Table(_) => {
            let format: AudioFormat = v.try_into().map_err(|e| D::Error::custom(e.message()))?;
            Ok(vec![AudioTrack {
                id: MAIN_TRACK.into(),
                language: None,
                format,
            }])
        }
        v @ toml::Value::Array(_) => {
            let specs: Vec<TrackSpec> = v
                .try_into()
                .map_err(|e| D::Error::custom(format!("in [[channel.audio]]: {}", e.message())))?;
            Ok(specs
                .into_iter()
                .map(|s| AudioTrack {
                    id: s.id,
                    language: s.language,
                    format: AudioFormat {
                        rate: s.rate,
                        channels: s.channels,
                        bitrate: s.bitrate,
                    },
                })
                .collect())
        }
        other => Err(D::Error::custom(format!(
            "audio is a {}: write a [channel.audio] table or [[channel.audio]] tracks",
            other.type_str()
        ))),
    }
}

/// Where an input's stream for a track comes from (`[channel.input.audio]`):
/// its n-th audio stream (from 0, in the container's order) or the
/// stream tagged with a language.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TrackSource {
    Index(u32),
    Language(String),
}

/// ISO 639 codes through libgsttag's table (the one the demuxers and
/// muxers use): the ISO 639-2/B code of `lang` (a 639-1 or 639-2 code),
/// if it knows it.
pub fn iso639_2b(lang: &str) -> Option<String> {
    language_code(lang, Iso639::TwoB)
}

/// The ISO 639-1 code of `lang`, if it has one (HLS LANGUAGE prefers it).
pub fn iso639_1(lang: &str) -> Option<String> {
    language_code(lang, Iso639::One)
}

enum Iso639 {
    One,
    TwoB,
}

#[link(name = "gsttag-1.0")]
extern "C" {
    fn gst_tag_get_language_code_iso_639_1(
        lang_code: *const std::ffi::c_char,
    ) -> *const std::ffi::c_char;
    fn gst_tag_get_language_code_iso_639_2B(
        lang_code: *const std::ffi::c_char,
    ) -> *const std::ffi::c_char;
}

fn language_code(lang: &str, want: Iso639) -> Option<String> {
    let _ = gst::init();
    let c = std::ffi::CString::new(lang.to_ascii_lowercase()).ok()?;
    // SAFETY: a NUL-terminated string we own; the result is NULL or a
    // static string of libgsttag's table.
    let r = unsafe {
        match want {
            Iso639::One => gst_tag_get_language_code_iso_639_1(c.as_ptr()),
            Iso639::TwoB => gst_tag_get_language_code_iso_639_2B(c.as_ptr()),
        }
    };
    if r.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated, static (above).
    let s = unsafe { std::ffi::CStr::from_ptr(r) };
    s.to_str().ok().map(str::to_owned)
}
