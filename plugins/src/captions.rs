//! Closed captions (CEA-608 / CEA-708) as they travel with a frame: the
//! `GstVideoCaptionMeta` on a buffer, taken off and put back.
//!
//! A frame-rate change must neither drop nor repeat caption bytes: 608 is
//! a byte stream whose letters and commands span frames, so a dropped
//! frame loses letters and a repeated one doubles them. [`Pacer`] takes
//! the captions off every frame before the rate changes and gives each
//! frame after it its share: at most what CEA-708's caption channel
//! carries per frame at that rate (9600 bit/s, 608 pairs per field as in
//! SMPTE 334's CDP table), the rest on the next frames. What it puts back
//! is always `cc_data` (`CEA708_RAW`), the one form the 1.22 encoders that
//! write captions (x264enc, vah264enc, qsvh264enc) read.
//!
//! Why not ccconverter: it paces a caption *stream*, so every input would
//! need ccextractor → ccconverter → cccombiner, an aggregator that waits
//! on its caption pad, around the normalizer; a source whose captions
//! stall would hold its pictures. The pacer is a queue beside the frames.

use std::collections::VecDeque;

use gst_video::{VideoCaptionMeta, VideoCaptionType};

/// Whether `buf` carries captions.
pub fn has(buf: &gst::BufferRef) -> bool {
    buf.meta::<VideoCaptionMeta>().is_some()
}

/// Takes every caption meta off `buf`; returns whether there was one.
pub fn strip(buf: &mut gst::BufferRef) -> bool {
    if !has(buf) {
        return false;
    }
    buf.foreach_meta_mut(|meta| {
        use gst::buffer::BufferMetaForeachAction::{Keep, Remove};
        use gst::prelude::*;
        std::ops::ControlFlow::Continue(if meta.api() == VideoCaptionMeta::meta_api() {
            Remove
        } else {
            Keep
        })
    });
    true
}

/// A 608 byte pair with nothing in it (both bytes 0 under their parity).
fn null_608(pair: [u8; 2]) -> bool {
    pair[0] & 0x7f == 0 && pair[1] & 0x7f == 0
}

/// How long an input's captions count as present after their last frame:
/// a source that stops carrying them stops getting padding soon after.
const PRESENT_FOR: u64 = 1_000_000_000;

/// The captions of one input between its decoder and its normalized
/// frames (see the module doc).
#[derive(Debug)]
pub struct Pacer {
    field1: VecDeque<[u8; 2]>,
    field2: VecDeque<[u8; 2]>,
    /// CEA-708 caption channel packet bytes, with their cc_type (2 or 3).
    dtvcc: VecDeque<[u8; 3]>,
    /// 608 pairs per field and 708 triples a frame may carry.
    per_field: usize,
    per_frame_708: usize,
    /// Bound of each queue: two seconds at the output rate.
    cap_608: usize,
    cap_708: usize,
    /// When captions last arrived (ns, the caller's clock); None: never.
    seen: Option<u64>,
    /// Bytes thrown away because a queue was full (a source sending more
    /// than the caption channel carries).
    pub dropped: u64,
}

impl Pacer {
    /// A pacer for frames at `fps` (numerator, denominator) after the
    /// rate change.
    pub fn new(fps: (u32, u32)) -> Pacer {
        let rate = fps.0 as f64 / fps.1.max(1) as f64;
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            25.0
        };
        // 608 runs at 60 fields/s: 30 pairs per field per second, with
        // room to catch up (SMPTE 334's table: 2 per field up to 30 fps,
        // 1 at 50 and 60). 708's 9600 bit/s is 600 triples a second.
        let per_field = ((60.0 / rate).floor() as usize).max(1);
        let total = ((600.0 / rate).floor() as usize).max(2 * per_field + 1);
        let per_frame_708 = total - 2 * per_field;
        let frames_2s = (2.0 * rate).ceil() as usize;
        Pacer {
            field1: VecDeque::new(),
            field2: VecDeque::new(),
            dtvcc: VecDeque::new(),
            per_field,
            per_frame_708,
            cap_608: per_field * frames_2s,
            cap_708: per_frame_708 * frames_2s,
            seen: None,
            dropped: 0,
        }
    }

    /// Queues the captions of one incoming frame (any caption type), at
    /// `now` (ns).
    pub fn push(&mut self, kind: VideoCaptionType, data: &[u8], now: u64) {
        self.seen = Some(now);
        match kind {
            VideoCaptionType::Cea608Raw => {
                for p in data.chunks_exact(2) {
                    self.push_608(true, [p[0], p[1]]);
                }
            }
            VideoCaptionType::Cea608S3341a => {
                // SMPTE 334-1 §4: bit 7 of the first byte set is field 1.
                for t in data.chunks_exact(3) {
                    self.push_608(t[0] & 0x80 != 0, [t[1], t[2]]);
                }
            }
            VideoCaptionType::Cea708Raw => self.push_cc_data(data),
            VideoCaptionType::Cea708Cdp => {
                if let Some(cc) = cdp_cc_data(data) {
                    self.push_cc_data(cc);
                }
            }
            _ => {}
        }
    }

    fn push_cc_data(&mut self, data: &[u8]) {
        for t in data.chunks_exact(3) {
            if t[0] & 0x04 == 0 {
                continue; // cc_valid = 0: padding
            }
            match t[0] & 0x03 {
                0 => self.push_608(true, [t[1], t[2]]),
                1 => self.push_608(false, [t[1], t[2]]),
                kind => {
                    if self.dtvcc.len() >= self.cap_708 {
                        self.dtvcc.pop_front();
                        self.dropped += 3;
                    }
                    self.dtvcc.push_back([kind, t[1], t[2]]);
                }
            }
        }
    }

    fn push_608(&mut self, field1: bool, pair: [u8; 2]) {
        // Null pairs are the padding of an idle caption channel: the
        // output pads again by itself, and keeping them would let a faster
        // source's padding crowd out its letters.
        if null_608(pair) {
            return;
        }
        let q = if field1 {
            &mut self.field1
        } else {
            &mut self.field2
        };
        if q.len() >= self.cap_608 {
            q.pop_front();
            self.dropped += 2;
        }
        q.push_back(pair);
    }

    /// The `cc_data` of the next outgoing frame at `now` (ns): what is
    /// due, or padding while the input carries captions; None once it has
    /// carried none for a second (or never has).
    pub fn take(&mut self, now: u64) -> Option<Vec<u8>> {
        let present = self
            .seen
            .is_some_and(|s| now.saturating_sub(s) <= PRESENT_FOR);
        let pending = !(self.field1.is_empty() && self.field2.is_empty() && self.dtvcc.is_empty());
        if !present && !pending {
            return None;
        }
        let mut out = Vec::with_capacity(3 * (2 * self.per_field + self.per_frame_708));
        for (q, cc_type) in [(&mut self.field1, 0u8), (&mut self.field2, 1u8)] {
            let n = q.len().min(self.per_field);
            for p in q.drain(..n) {
                out.extend_from_slice(&[0xfc | cc_type, p[0], p[1]]);
            }
        }
        if out.is_empty() {
            // A field-1 pair with cc_valid = 0: "captions here, nothing
            // new", as encoders pad an idle channel.
            out.extend_from_slice(&[0xf8, 0x80, 0x80]);
        }
        let n = self.dtvcc.len().min(self.per_frame_708);
        for t in self.dtvcc.drain(..n) {
            out.extend_from_slice(&[0xfc | t[0], t[1], t[2]]);
        }
        Some(out)
    }

    /// Puts [`Pacer::take`]'s captions on `buf` (which carries none).
    pub fn attach(&mut self, buf: &mut gst::BufferRef, now: u64) -> bool {
        match self.take(now) {
            Some(cc) => {
                VideoCaptionMeta::add(buf, VideoCaptionType::Cea708Raw, &cc);
                true
            }
            None => false,
        }
    }

    /// Takes every caption meta off `buf` into the queue (at `now`, ns);
    /// returns whether there was one.
    pub fn take_from(&mut self, buf: &mut gst::BufferRef, now: u64) -> bool {
        let mut found = false;
        for m in buf.iter_meta::<VideoCaptionMeta>() {
            self.push(m.caption_type(), m.data(), now);
            found = true;
        }
        if found {
            strip(buf);
        }
        found
    }
}

/// The cc_data triples inside a CEA-708 CDP (SMPTE 334-2): after its
/// 7-byte header, an optional time code section (0x71, 4 bytes), then the
/// cc_data section (0x72, cc_count in the low 5 bits).
fn cdp_cc_data(cdp: &[u8]) -> Option<&[u8]> {
    if cdp.len() < 7 || cdp[0] != 0x96 || cdp[1] != 0x69 {
        return None;
    }
    let mut at = 7;
    if cdp.get(at) == Some(&0x71) {
        at += 5;
    }
    if cdp.get(at) != Some(&0x72) {
        return None;
    }
    let count = (*cdp.get(at + 1)? & 0x1f) as usize;
    cdp.get(at + 2..at + 2 + 3 * count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn triples(cc: &[u8]) -> Vec<[u8; 3]> {
        cc.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect()
    }

    /// The 608 field-1 bytes of a run of frames' cc_data, padding left out.
    fn field1(frames: &[Vec<u8>]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|f| triples(f))
            .filter(|t| t[0] == 0xfc)
            .flat_map(|t| [t[1], t[2]])
            .collect()
    }

    #[test]
    fn thirty_frames_of_608_into_25_lose_and_repeat_nothing() {
        // 30 fps in, 25 out: as videorate drops every sixth frame. Every
        // letter comes out once, in order, within two seconds.
        let mut p = Pacer::new((25, 1));
        let text: Vec<u8> = (0..60u8).map(|i| 0x41 + i % 26).collect();
        let mut out = Vec::new();
        let mut t_in = 0u64;
        let mut pairs = text.chunks_exact(2);
        for frame in 0..50u64 {
            let t_out = frame * SEC / 25;
            while t_in <= t_out {
                let pair = pairs.next().unwrap_or(&[0x80, 0x80]);
                p.push(VideoCaptionType::Cea708Raw, &[0xfc, pair[0], pair[1]], t_in);
                t_in += SEC / 30;
            }
            out.push(p.take(t_out).expect("captions present"));
        }
        assert_eq!(field1(&out), text);
        assert_eq!(p.dropped, 0);
    }

    #[test]
    fn sixty_frames_into_25_catch_up_with_two_pairs_a_frame() {
        // A 60 fps source carries a pair on every frame: more than 25 fps
        // carries at one per frame, so the pacer must send two.
        let mut p = Pacer::new((25, 1));
        assert_eq!(p.per_field, 2);
        let text: Vec<u8> = (0..120u8).map(|i| 0x20 + i % 90).collect();
        let mut pairs = text.chunks_exact(2);
        let mut out = Vec::new();
        for frame in 0..60u64 {
            for _ in 0..(if frame % 5 == 4 { 3 } else { 2 }) {
                if let Some(pair) = pairs.next() {
                    p.push(VideoCaptionType::Cea608Raw, pair, frame);
                }
            }
            out.push(p.take(frame).unwrap());
        }
        assert_eq!(field1(&out), text, "nothing lost");
        let longest = out.iter().map(|f| f.len() / 3).max().unwrap();
        assert!(longest <= 2 + 22, "{longest} triples in one frame");
    }

    #[test]
    fn a_repeated_frame_gets_padding_not_the_letters_again() {
        let mut p = Pacer::new((25, 1));
        p.push(VideoCaptionType::Cea708Raw, &[0xfc, 0xc1, 0xc2], 0);
        assert_eq!(p.take(0).unwrap(), vec![0xfc, 0xc1, 0xc2]);
        assert_eq!(
            p.take(40_000_000).unwrap(),
            vec![0xf8, 0x80, 0x80],
            "the next frame: padding"
        );
        assert_eq!(
            p.take(2 * SEC),
            None,
            "a second without captions: the input has none"
        );
    }

    #[test]
    fn an_input_without_captions_gets_none() {
        let mut p = Pacer::new((50, 1));
        assert_eq!(p.take(0), None);
        p.push(VideoCaptionType::Cea708Raw, &[0xf8, 0x80, 0x80], 0);
        assert_eq!(p.take(0).unwrap(), vec![0xf8, 0x80, 0x80]);
    }

    #[test]
    fn every_caption_type_becomes_cc_data() {
        let mut p = Pacer::new((30, 1));
        // s334-1a: field 2 then field 1.
        p.push(
            VideoCaptionType::Cea608S3341a,
            &[0x00, 0x91, 0x92, 0x80, 0x93, 0x94],
            0,
        );
        assert_eq!(
            triples(&p.take(0).unwrap()),
            vec![[0xfc, 0x93, 0x94], [0xfd, 0x91, 0x92]]
        );
        // A CDP with a time code and two cc_data triples, one 708.
        let cdp = [
            0x96, 0x69, 0x1a, 0x5f, 0x43, 0x00, 0x01, // header
            0x71, 0, 0, 0, 0, // time code
            0x72, 0xe2, 0xfc, 0xc5, 0xc6, 0xff, 0x03, 0x21, // cc_data
            0x74, 0x00, 0x01, 0x00, // footer
        ];
        p.push(VideoCaptionType::Cea708Cdp, &cdp, 0);
        assert_eq!(
            triples(&p.take(0).unwrap()),
            vec![[0xfc, 0xc5, 0xc6], [0xff, 0x03, 0x21]]
        );
        assert_eq!(cdp_cc_data(&[0x96, 0x69, 3]), None, "too short");
        assert_eq!(cdp_cc_data(&cdp[..15]), None, "cut short");
    }

    #[test]
    fn a_flood_is_bounded_to_two_seconds() {
        let mut p = Pacer::new((25, 1));
        for i in 0..1000u32 {
            p.push(VideoCaptionType::Cea608Raw, &[0xc1, (i % 100) as u8 | 1], 0);
        }
        assert_eq!(p.field1.len(), 2 * 25 * 2);
        assert_eq!(p.dropped, 2 * (1000 - 100));
    }

    #[test]
    fn strip_and_attach_on_a_buffer() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::with_size(16).unwrap();
        let b = buf.get_mut().unwrap();
        VideoCaptionMeta::add(b, VideoCaptionType::Cea708Raw, &[0xfc, 0xc1, 0xc2]);
        let mut p = Pacer::new((25, 1));
        assert!(p.take_from(b, 0));
        assert!(!has(b), "taken off");
        assert!(p.attach(b, 0));
        let m = b.meta::<VideoCaptionMeta>().unwrap();
        assert_eq!(m.caption_type(), VideoCaptionType::Cea708Raw);
        assert_eq!(m.data(), &[0xfc, 0xc1, 0xc2]);
        assert!(strip(b));
        assert!(!strip(b));
    }
}
