//! What nonstopd adds to the media playlists hlssink2 writes: hlssink2
//! writes each one through a stream of ours ("get-playlist-stream"), which
//! marks the SCTE-35 breaks (`#EXT-X-CUE-OUT`/`#EXT-X-CUE-IN`) and, for a
//! fleet channel, numbers the segments from UTC, before the file is
//! replaced whole.
//!
//! Breaks: each segment's start on the output's timeline is its first
//! keyframe's for the first segment, then the sum of the `#EXTINF`s before
//! it (hlssink2 writes each segment's exact duration); the tag goes before
//! the segment whose span holds the splice. `CUE-OUT`/`CUE-IN` and not
//! `#EXT-X-DATERANGE`: the playlists carry no `#EXT-X-PROGRAM-DATE-TIME`
//! for a DATERANGE to be placed against, and the SSAI servers and packagers
//! broadcast channels feed read CUE-OUT/IN.
//!
//! A fleet channel's HLS playlist numbered from UTC. Its segments start on
//! multiples of the segment duration of UTC (the output starts on such a
//! keyframe, and the keyframes fall on multiples of the keyframe
//! interval), so segment k of one box is segment k of every box. hlssink2
//! numbers from 0 and cannot be told otherwise: it writes the playlist
//! through a stream of ours ("get-playlist-stream"), which adds the first
//! segment's number, floor(its start / segment duration), to the
//! `#EXT-X-MEDIA-SEQUENCE` before the file is replaced.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gio::subclass::prelude::*;
use gst::prelude::*;

/// The number of the output's first segment (`u64::MAX` until it starts).
pub type SequenceBase = Arc<AtomicU64>;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct Stream {
        pub(super) text: Mutex<Vec<u8>>,
        pub(super) target: Mutex<Option<Target>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Stream {
        const NAME: &'static str = "NonstopPlaylistStream";
        type Type = super::Stream;
        type ParentType = gio::OutputStream;
    }

    impl ObjectImpl for Stream {}

    impl OutputStreamImpl for Stream {
        fn write(&self, buffer: &[u8], _: Option<&gio::Cancellable>) -> Result<usize, glib::Error> {
            let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
            text.extend_from_slice(buffer);
            Ok(buffer.len())
        }

        fn close(&self, _: Option<&gio::Cancellable>) -> Result<(), glib::Error> {
            let target = self.target.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Some(t) = target else {
                return Ok(());
            };
            let text = std::mem::take(&mut *self.text.lock().unwrap_or_else(|e| e.into_inner()));
            let mut text = String::from_utf8_lossy(&text).into_owned();
            if let Some(base) = &t.sequence {
                text = rebase(&text, base.load(Ordering::Acquire).min(u64::MAX - 1));
            }
            let edges = t.breaks.edges();
            let first = t.first.load(Ordering::Acquire);
            let text = t
                .spans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .mark(&text, &edges, first);
            replace(&t.path, text.as_bytes())
                .map_err(|e| glib::Error::new(gio::IOErrorEnum::Failed, &e.to_string()))
        }
    }
}

glib::wrapper! {
    pub struct Stream(ObjectSubclass<imp::Stream>) @extends gio::OutputStream;
}

/// Where a playlist goes and what it gets on the way.
pub struct Target {
    path: PathBuf,
    /// A fleet channel's: its first segment's number on UTC.
    sequence: Option<SequenceBase>,
    breaks: Arc<Breaks>,
    spans: Arc<Mutex<Spans>>,
    /// The PTS of the output's first keyframe (`u64::MAX`: not yet).
    first: Arc<AtomicU64>,
}

/// A break's edge in the playlist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edge {
    /// `#EXT-X-CUE-OUT`, with the break's duration when known.
    Out(Option<f64>),
    /// `#EXT-X-CUE-IN`.
    In,
}

/// The SCTE-35 edges of an output, at times on its timeline (ns); shared
/// by its playlists (one per rendition).
#[derive(Debug, Default)]
pub struct Breaks {
    edges: Mutex<Vec<(u64, Edge)>>,
}

/// Edges and segment spans kept: a day of 2 s segments.
const KEEP: usize = 50_000;
/// How far a segment's computed start may be after its real one: far
/// less than a frame.
const SLACK: u64 = 1_000_000;

impl Breaks {
    pub fn add(&self, at: u64, edge: Edge) {
        let mut e = self.edges.lock().unwrap_or_else(|e| e.into_inner());
        e.push((at, edge));
        if e.len() > KEEP {
            e.remove(0);
        }
    }

    fn edges(&self) -> Vec<(u64, Edge)> {
        self.edges.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Where one playlist's segments begin and end (ns), by name, learnt as
/// they appear in it.
#[derive(Debug, Default)]
pub struct Spans {
    by_name: std::collections::HashMap<String, (u64, u64)>,
    /// The end of the newest segment.
    end: Option<u64>,
}

impl Spans {
    /// `text` with each of `edges`' tags before the segment whose span
    /// holds it; `first`: the first segment's start (`u64::MAX`: unknown).
    pub fn mark(&mut self, text: &str, edges: &[(u64, Edge)], first: u64) -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = String::with_capacity(text.len() + 64);
        for (k, line) in lines.iter().enumerate() {
            if let Some(d) = line.trim_end().strip_prefix("#EXTINF:") {
                // The segment's URI: the next line that is not a tag.
                let name = lines[k + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .unwrap_or("");
                let secs: f64 = d
                    .split(',')
                    .next()
                    .unwrap_or("0")
                    .trim()
                    .parse()
                    .unwrap_or(0.0);
                if let Some((start, end)) = self.span(name, secs, first) {
                    // A splice is an IDR that usually starts a segment: the
                    // spans, summed from rounded #EXTINFs, may put that
                    // start a hair after it.
                    let (start, end) = (start.saturating_sub(SLACK), end.saturating_sub(SLACK));
                    for (at, edge) in edges {
                        if (start..end).contains(at) {
                            out.push_str(&match edge {
                                Edge::Out(Some(d)) => format!("#EXT-X-CUE-OUT:DURATION={d}\n"),
                                Edge::Out(None) => "#EXT-X-CUE-OUT\n".to_owned(),
                                Edge::In => "#EXT-X-CUE-IN\n".to_owned(),
                            });
                        }
                    }
                }
            }
            out.push_str(line);
        }
        out
    }

    fn span(&mut self, name: &str, secs: f64, first: u64) -> Option<(u64, u64)> {
        if let Some(s) = self.by_name.get(name) {
            return Some(*s);
        }
        if first == u64::MAX {
            return None;
        }
        let start = self.end.unwrap_or(first);
        let s = (start, start + (secs * 1e9).round() as u64);
        self.by_name.insert(name.to_owned(), s);
        self.end = Some(s.1);
        if self.by_name.len() > KEEP {
            let oldest = self
                .by_name
                .iter()
                .min_by_key(|(_, s)| s.0)
                .map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.by_name.remove(&n);
            }
        }
        Some(s)
    }
}

/// `text` (a media playlist) with `base` added to its media sequence; the
/// rest as it was. A playlist without one gets one.
pub fn rebase(text: &str, base: u64) -> String {
    const TAG: &str = "#EXT-X-MEDIA-SEQUENCE:";
    let mut out = String::with_capacity(text.len() + 16);
    let mut seen = false;
    for line in text.split_inclusive('\n') {
        match line.trim_end().strip_prefix(TAG) {
            Some(n) if !seen => {
                seen = true;
                let n: u64 = n.trim().parse().unwrap_or(0);
                out.push_str(&format!("{TAG}{}\n", n.saturating_add(base)));
            }
            _ => out.push_str(line),
        }
    }
    if !seen {
        // After the header lines, before the first segment.
        let at = out.find("#EXTINF").unwrap_or(out.len());
        out.insert_str(at, &format!("{TAG}{base}\n"));
    }
    out
}

/// Writes `path` whole or not at all: a player never reads half a
/// playlist.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("m3u8.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Has `hlssink2` write its playlist through [`Stream`]s: marking the
/// `breaks`, numbering from `sequence` (a fleet channel's); `first` is the
/// PTS of the output's first keyframe.
pub(super) fn attach(
    sink: &gst::Element,
    sequence: Option<SequenceBase>,
    breaks: Arc<Breaks>,
    first: Arc<AtomicU64>,
) {
    let spans = Arc::new(Mutex::new(Spans::default()));
    sink.connect("get-playlist-stream", false, move |args| {
        let location: String = args.get(1)?.get().ok()?;
        let stream: Stream = glib::Object::new();
        *stream
            .imp()
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Target {
            path: PathBuf::from(location),
            sequence: sequence.clone(),
            breaks: breaks.clone(),
            spans: spans.clone(),
            first: first.clone(),
        });
        Some(stream.upcast::<gio::OutputStream>().to_value())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-TARGETDURATION:6\n\n#EXTINF:6,\nsegment-1-00003.ts\n#EXTINF:6,\nsegment-1-00004.ts\n";

    #[test]
    fn the_media_sequence_counts_from_the_first_segment_on_utc() {
        let out = rebase(PLAYLIST, 299_426_000);
        assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:299426003\n"), "{out}");
        assert_eq!(out.replace("299426003", "3"), PLAYLIST);
        // None written (hlssink2 omits it at 0 in some versions): added.
        let bare = PLAYLIST.replace("#EXT-X-MEDIA-SEQUENCE:3\n", "");
        let out = rebase(&bare, 7);
        assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:6,"), "{out}");
    }

    #[test]
    fn the_stream_writes_the_rebased_playlist_whole_on_close() {
        gst::init().unwrap();
        let dir = std::env::temp_dir().join(format!("nonstop-playlist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("index.m3u8");
        let base: SequenceBase = Arc::new(AtomicU64::new(100));
        let stream: Stream = glib::Object::new();
        *stream.imp().target.lock().unwrap() = Some(Target {
            path: path.clone(),
            sequence: Some(base),
            breaks: Arc::default(),
            spans: Arc::default(),
            first: Arc::new(AtomicU64::new(u64::MAX)),
        });
        let out = stream.upcast_ref::<gio::OutputStream>();
        use gio::prelude::*;
        out.write_all(PLAYLIST.as_bytes(), gio::Cancellable::NONE)
            .unwrap();
        assert!(
            !path.exists(),
            "nothing is written before the stream closes"
        );
        out.close(gio::Cancellable::NONE).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:103\n"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn breaks_are_tagged_before_the_segments_that_hold_them() {
        let s = 1_000_000_000u64;
        let mut spans = Spans::default();
        let edges = [
            (3600 * s + 4 * s, Edge::Out(Some(30.0))),
            (3600 * s + 12 * s + s / 2, Edge::In),
        ];
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\n#EXTINF:4,\na-0.ts\n#EXTINF:4,\na-1.ts\n#EXTINF:4.5,\na-2.ts\n";
        // Nothing is known before the first keyframe: nothing is tagged.
        assert_eq!(spans.mark(text, &edges, u64::MAX), text);
        let out = spans.mark(text, &edges, 3600 * s);
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\n#EXTINF:4,\na-0.ts\n#EXT-X-CUE-OUT:DURATION=30\n#EXTINF:4,\na-1.ts\n#EXTINF:4.5,\na-2.ts\n"
        );
        // The next write: a-0 gone, a-3 new, starting where a-2 ended.
        let text = "#EXTM3U\n#EXTINF:4,\na-1.ts\n#EXTINF:4.5,\na-2.ts\n#EXTINF:4,\na-3.ts\n";
        let out = spans.mark(text, &edges, 3600 * s);
        assert!(
            out.contains("#EXT-X-CUE-OUT:DURATION=30\n#EXTINF:4,\na-1.ts"),
            "{out}"
        );
        assert!(out.contains("#EXT-X-CUE-IN\n#EXTINF:4,\na-3.ts"), "{out}");
        // A splice on a segment's first frame, its start summed a hair late
        // from rounded durations: still that segment.
        let mut spans = Spans::default();
        let edges = [(4 * s, Edge::In)];
        let text = "#EXTINF:3.9999999,\nb-0.ts\n#EXTINF:4,\nb-1.ts\n";
        let out = spans.mark(text, &edges, 200);
        assert!(out.contains("#EXT-X-CUE-IN\n#EXTINF:4,\nb-1.ts"), "{out}");
    }
}
