//! Content analysis of `nonstopwatchdog`: a sampled luma grid per video
//! frame (mean luma, dark share, difference to a reference frame) and the
//! RMS level of each audio channel. Pure functions over mapped memory.

use gst_video::prelude::*;
use gst_video::VideoFormat;

/// At most this many sample columns and rows per frame: 1080p costs 2304
/// samples, a few microseconds.
const GRID_X: u32 = 64;
const GRID_Y: u32 = 36;

/// Video formats the analysis reads, with a clear error for the rest.
pub fn video_supported(f: VideoFormat) -> bool {
    use VideoFormat::*;
    matches!(
        f,
        I420 | Yv12
            | Nv12
            | Nv21
            | Yuy2
            | Uyvy
            | Rgb
            | Bgr
            | Rgbx
            | Bgrx
            | Xrgb
            | Xbgr
            | Rgba
            | Bgra
            | Argb
            | Abgr
            | I42010le
            | I42210le
    )
}

pub fn audio_supported(f: gst_audio::AudioFormat) -> bool {
    use gst_audio::AudioFormat::*;
    matches!(f, S16le | S32le | F32le | F64le)
}

/// Luma samples of one frame, normalised to 0..=1.
pub fn luma_grid(frame: &gst_video::VideoFrameRef<&gst::BufferRef>) -> Vec<f32> {
    let info = frame.info();
    let finfo = info.format_info();
    let (w, h) = (info.width(), info.height());
    let sx = (w / GRID_X).max(1);
    let sy = (h / GRID_Y).max(1);
    let mut out = Vec::with_capacity(((w / sx) * (h / sy)) as usize);
    if finfo.is_yuv() {
        // Y is component 0 in every supported YUV format.
        let plane = finfo.plane()[0];
        let Ok(data) = frame.plane_data(plane) else {
            return out;
        };
        let stride = frame.plane_stride()[plane as usize] as usize;
        let pstride = finfo.pixel_stride()[0] as usize;
        let offset = finfo.poffset()[0] as usize;
        let depth = finfo.depth()[0];
        let max = ((1u32 << depth) - 1) as f32;
        for y in (0..h).step_by(sy as usize) {
            let row = y as usize * stride;
            for x in (0..w).step_by(sx as usize) {
                let at = row + x as usize * pstride + offset;
                let v = if depth > 8 {
                    u16::from_le_bytes([data[at], data[at + 1]]) as f32
                } else {
                    data[at] as f32
                };
                out.push(v / max);
            }
        }
    } else {
        // RGB: Rec. 709 luma from the R, G, B components.
        let Ok(data) = frame.plane_data(0) else {
            return out;
        };
        let stride = frame.plane_stride()[0] as usize;
        let pstride = finfo.pixel_stride()[0] as usize;
        let off = finfo.poffset();
        let (r, g, b) = (off[0] as usize, off[1] as usize, off[2] as usize);
        for y in (0..h).step_by(sy as usize) {
            let row = y as usize * stride;
            for x in (0..w).step_by(sx as usize) {
                let px = row + x as usize * pstride;
                let l = 0.2126 * data[px + r] as f32
                    + 0.7152 * data[px + g] as f32
                    + 0.0722 * data[px + b] as f32;
                out.push(l / 255.0);
            }
        }
    }
    out
}

pub fn mean(v: &[f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f32>() / v.len() as f32
}

/// Share of samples at or below `threshold` (0..=1 of the luma range).
pub fn dark_share(v: &[f32], threshold: f32) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().filter(|&&l| l <= threshold).count() as f32 / v.len() as f32
}

/// Mean absolute difference in 8-bit luma levels.
pub fn difference(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::MAX;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32 * 255.0
}

/// Loudest channel's RMS level in dBFS (full scale = 1.0); -inf for digital
/// silence.
pub fn loudest_channel_dbfs(info: &gst_audio::AudioInfo, data: &[u8]) -> f64 {
    use gst_audio::AudioFormat as F;
    let ch = info.channels() as usize;
    let width = (info.width() / 8) as usize;
    let read = |b: &[u8]| -> f64 {
        match info.format() {
            F::S16le => i16::from_le_bytes([b[0], b[1]]) as f64 / 32768.0,
            F::S32le => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64 / 2147483648.0,
            F::F32le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            F::F64le => f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
            _ => 0.0,
        }
    };
    let frames = data.len() / (width * ch).max(1);
    if frames == 0 || ch == 0 {
        return f64::NEG_INFINITY;
    }
    let mut sums = vec![0f64; ch];
    for f in 0..frames {
        for (c, sum) in sums.iter_mut().enumerate() {
            let at = (f * ch + c) * width;
            let v = read(&data[at..at + width]);
            *sum += v * v;
        }
    }
    sums.iter()
        .map(|s| 10.0 * (s / frames as f64).log10())
        .fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(
        format: VideoFormat,
        fill: impl Fn(usize, &mut [u8]),
    ) -> (gst::Buffer, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(format, 128, 72)
            .build()
            .unwrap();
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let mut m = buf.get_mut().unwrap().map_writable().unwrap();
            for (i, b) in m.as_mut_slice().chunks_mut(1).enumerate() {
                fill(i, b);
            }
        }
        (buf, info)
    }

    #[test]
    fn luma_of_black_and_white_in_several_formats() {
        for (fmt, black, white) in [
            (VideoFormat::I420, 16u8, 235u8),
            (VideoFormat::Nv12, 16, 235),
            (VideoFormat::Bgrx, 0, 255),
        ] {
            for (level, expect) in [(black, black as f32 / 255.0), (white, white as f32 / 255.0)] {
                let (buf, info) = frame(fmt, |_, b| b[0] = level);
                let f = gst_video::VideoFrameRef::from_buffer_ref_readable(&buf, &info).unwrap();
                let g = luma_grid(&f);
                assert!(!g.is_empty());
                assert!((mean(&g) - expect).abs() < 0.01, "{fmt:?} {}", mean(&g));
            }
        }
    }

    #[test]
    fn ten_bit_luma_is_scaled() {
        let (buf, info) = frame(VideoFormat::I42010le, |i, b| {
            b[0] = if i % 2 == 0 { 0x00 } else { 0x02 }
        });
        let f = gst_video::VideoFrameRef::from_buffer_ref_readable(&buf, &info).unwrap();
        // 0x0200 = 512 of 1023.
        assert!((mean(&luma_grid(&f)) - 512.0 / 1023.0).abs() < 0.01);
    }

    #[test]
    fn audio_levels() {
        gst::init().unwrap();
        let info = gst_audio::AudioInfo::builder(gst_audio::AudioFormat::F32le, 48000, 2)
            .build()
            .unwrap();
        let tone: Vec<u8> = (0..480)
            .flat_map(|i| {
                let v = (i as f32 * 0.1).sin() * 0.5;
                [v.to_le_bytes(), (v * 0.001).to_le_bytes()].concat()
            })
            .collect();
        let db = loudest_channel_dbfs(&info, &tone);
        assert!((db - (-9.03)).abs() < 0.5, "{db}");
        assert_eq!(
            loudest_channel_dbfs(&info, &vec![0u8; 480 * 8]),
            f64::NEG_INFINITY
        );
    }
}
