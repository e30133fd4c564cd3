//! Which of an input's audio streams feeds which of the channel's audio
//! tracks: by the input's `[channel.input.audio]` map (an index or a
//! language per track), else by the track's language, else by position.
//! A track left without a stream gets silence, and the channel hears of it
//! (a [`TRACKS_MESSAGE`]) to raise an alarm.

use std::collections::BTreeMap;

use gst::glib;
use gst::prelude::*;

use crate::config::{iso639_2b, AudioTrack, TrackSource};

/// The element message an input posts once its audio streams are known:
/// `missing` (the track indices without a stream, comma-separated),
/// `streams` (how many audio streams it has), `mapping` (for the log).
pub const TRACKS_MESSAGE: &str = "nonstop-tracks";

/// An input's audio pads, each with its language, in the order found.
pub type Streams = Vec<(gst::Pad, Option<String>)>;

/// What the input's pipeline needs of the channel's tracks.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per track: its id and language (ISO 639-2/B).
    pub tracks: Vec<(String, Option<String>)>,
    /// Per track: the input's explicit choice, if any.
    pub chosen: Vec<Option<TrackSource>>,
    /// Tell the channel which tracks it lacks (not for a slate image).
    pub report: bool,
}

impl Plan {
    pub fn new(tracks: &[AudioTrack], map: &BTreeMap<String, TrackSource>) -> Plan {
        Plan {
            tracks: tracks
                .iter()
                .map(|t| (t.id.clone(), t.language.as_deref().and_then(iso639_2b)))
                .collect(),
            chosen: tracks.iter().map(|t| map.get(&t.id).cloned()).collect(),
            report: true,
        }
    }

    /// For each track, the stream (index into `found`: the input's audio
    /// streams in the container's order, each with its language) it
    /// takes. A track's explicit choice is final: if it names no stream,
    /// the track is missing. Otherwise a track with a language takes the
    /// first free stream in it, and failing that (and a track without
    /// one) the stream at its own position, unless that stream is free
    /// but in another language.
    pub fn assign(&self, found: &[Option<String>]) -> Vec<Option<usize>> {
        let n = self.tracks.len();
        let mut taken = vec![false; found.len()];
        let mut out: Vec<Option<usize>> = vec![None; n];
        fn take(s: usize, taken: &mut [bool]) -> Option<usize> {
            taken[s] = true;
            Some(s)
        }
        for (k, choice) in self.chosen.iter().enumerate() {
            out[k] = match choice {
                Some(TrackSource::Index(i)) => {
                    let i = *i as usize;
                    if i < found.len() && !taken[i] {
                        take(i, &mut taken)
                    } else {
                        None
                    }
                }
                Some(TrackSource::Language(l)) => {
                    let want = iso639_2b(l);
                    (0..found.len())
                        .find(|&s| !taken[s] && want.is_some() && found[s] == want)
                        .and_then(|s| take(s, &mut taken))
                }
                None => None,
            };
        }
        for (k, slot) in out.iter_mut().enumerate() {
            if self.chosen[k].is_some() {
                continue;
            }
            if let Some(lang) = &self.tracks[k].1 {
                if let Some(s) =
                    (0..found.len()).find(|&s| !taken[s] && found[s].as_ref() == Some(lang))
                {
                    *slot = take(s, &mut taken);
                }
            }
        }
        for (k, slot) in out.iter_mut().enumerate() {
            if self.chosen[k].is_some() || slot.is_some() {
                continue;
            }
            let other_language = match (&self.tracks[k].1, found.get(k)) {
                (Some(want), Some(Some(has))) => want != has,
                _ => false,
            };
            if k < found.len() && !taken[k] && !other_language {
                *slot = take(k, &mut taken);
            }
        }
        out
    }
}

/// The language of a decoder's pad, as ISO 639-2/B: from its stream's
/// tags (tsdemux puts the ISO 639 descriptor there), else from a tag
/// event it holds. Read on the pad and, for a ghost pad, its target.
pub fn pad_language(pad: &gst::Pad) -> Option<String> {
    let mut pads = vec![pad.clone()];
    if let Some(t) = pad.downcast_ref::<gst::GhostPad>().and_then(|g| g.target()) {
        pads.push(t);
    }
    for p in &pads {
        let from_stream = p.stream().and_then(|s| s.tags()).and_then(|t| {
            t.get::<gst::tags::LanguageCode>()
                .map(|l| l.get().to_owned())
        });
        let from_event = || {
            p.sticky_event::<gst::event::Tag>(0).and_then(|e| {
                e.tag()
                    .get::<gst::tags::LanguageCode>()
                    .map(|l| l.get().to_owned())
            })
        };
        if let Some(l) = from_stream.or_else(from_event) {
            return iso639_2b(&l).or(Some(l));
        }
    }
    None
}

/// The order of an input's audio streams: by stream id where every pad
/// has one (tsdemux's end in the PID, matroskademux's in the track
/// number, both fixed width), else as the decoder exposed them.
pub fn sort_streams(pads: &mut Streams) {
    let ids: Vec<Option<glib::GString>> = pads.iter().map(|(p, _)| p.stream_id()).collect();
    if ids.iter().all(Option::is_some) {
        let mut order: Vec<usize> = (0..pads.len()).collect();
        order.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        let sorted: Streams = order.iter().map(|&i| pads[i].clone()).collect();
        *pads = sorted;
    }
}

/// The log's words for an assignment: `eng ← stream 1 [eng], spa: none`.
pub fn describe(plan: &Plan, found: &[Option<String>], assigned: &[Option<usize>]) -> String {
    plan.tracks
        .iter()
        .zip(assigned)
        .map(|((id, _), a)| match a {
            Some(s) => match &found[*s] {
                Some(l) => format!("{id} ← stream {s} [{l}]"),
                None => format!("{id} ← stream {s}"),
            },
            None => format!("{id}: none (silence)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(tracks: &[(&str, Option<&str>)], chosen: &[Option<TrackSource>]) -> Plan {
        gst::init().unwrap();
        Plan {
            tracks: tracks
                .iter()
                .map(|(i, l)| (i.to_string(), l.map(str::to_owned)))
                .collect(),
            chosen: chosen.to_vec(),
            report: true,
        }
    }

    fn langs(l: &[Option<&str>]) -> Vec<Option<String>> {
        l.iter().map(|l| l.map(str::to_owned)).collect()
    }

    #[test]
    fn tracks_take_their_language_then_their_position() {
        let p = plan(&[("eng", Some("eng")), ("spa", Some("spa"))], &[None, None]);
        // Tagged in the other order: languages win.
        assert_eq!(
            p.assign(&langs(&[Some("spa"), Some("eng")])),
            [Some(1), Some(0)]
        );
        // Untagged: by position.
        assert_eq!(p.assign(&langs(&[None, None])), [Some(0), Some(1)]);
        // One stream, in English: Spanish is missing, not given English.
        assert_eq!(p.assign(&langs(&[Some("eng")])), [Some(0), None]);
        // A French second stream is no Spanish.
        assert_eq!(
            p.assign(&langs(&[Some("eng"), Some("fre")])),
            [Some(0), None]
        );
        // No audio at all.
        assert_eq!(p.assign(&[]), [None, None]);
        // The one track of a plain channel takes the first stream.
        let main = plan(&[("main", None)], &[None]);
        assert_eq!(main.assign(&langs(&[Some("ger"), Some("eng")])), [Some(0)]);
    }

    #[test]
    fn an_input_map_is_final() {
        let p = plan(
            &[("eng", Some("eng")), ("spa", Some("spa"))],
            &[
                Some(TrackSource::Index(2)),
                Some(TrackSource::Language("es".into())),
            ],
        );
        // "es" is Spanish in ISO 639-1: the map's codes are normalized.
        let found = langs(&[Some("eng"), Some("spa"), None]);
        assert_eq!(p.assign(&found), [Some(2), Some(1)]);
        // An index past the streams: missing, no fallback to English.
        assert_eq!(
            p.assign(&langs(&[Some("eng"), Some("spa")])),
            [None, Some(1)]
        );
        // Both tracks asking for the same stream: the first has it.
        let same = plan(
            &[("a", None), ("b", None)],
            &[Some(TrackSource::Index(0)), Some(TrackSource::Index(0))],
        );
        assert_eq!(same.assign(&langs(&[None, None])), [Some(0), None]);
    }
}
