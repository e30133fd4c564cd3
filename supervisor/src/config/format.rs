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
