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
        pub(super) target: Mutex<Option<(PathBuf, SequenceBase)>>,
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
            let Some((path, base)) = target else {
                return Ok(());
            };
            let text = std::mem::take(&mut *self.text.lock().unwrap_or_else(|e| e.into_inner()));
            let base = base.load(Ordering::Acquire);
            let text = rebase(&String::from_utf8_lossy(&text), base.min(u64::MAX - 1));
            replace(&path, text.as_bytes())
                .map_err(|e| glib::Error::new(gio::IOErrorEnum::Failed, &e.to_string()))
        }
    }
}

glib::wrapper! {
    pub struct Stream(ObjectSubclass<imp::Stream>) @extends gio::OutputStream;
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

/// Has `hlssink2` write its playlist through [`Stream`]s numbering from
/// `base`.
pub(super) fn attach(sink: &gst::Element, base: SequenceBase) {
    sink.connect("get-playlist-stream", false, move |args| {
        let location: String = args.get(1)?.get().ok()?;
        let stream: Stream = glib::Object::new();
        *stream
            .imp()
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((PathBuf::from(location), base.clone()));
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
        *stream.imp().target.lock().unwrap() = Some((path.clone(), base));
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
}
