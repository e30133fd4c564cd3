//! A channel's audio tracks in its outputs: each stream tagged with its
//! language before its caps (mpegtsmux writes the ISO 639 descriptor when
//! it creates the stream, on caps), and the HLS master playlist that lists
//! the variants and the alternate audio renditions.

use std::path::Path;

use gst::prelude::*;

use super::Rendition;

/// What an output needs to know of an audio track.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioOut {
    pub id: String,
    /// ISO 639-2/B, as the config's (validated) language.
    pub language: Option<String>,
    /// AAC, bit/s.
    pub bitrate: u64,
}

/// The HLS group of the audio renditions.
const GROUP: &str = "audio";

/// Where an HLS output puts the audio-only playlist of track `t` (not the
/// first, which is muxed with the video in every variant).
pub fn hls_dir(dir: &str, t: &AudioOut) -> String {
    format!("{dir}/audio-{}", t.id)
}

/// Sends a tag event with `language` to `pad`'s peer just before its
/// first caps: a muxer that fixes a stream's language when the stream is
/// made (on caps: mpegtsmux) hears it in time; mp4mux and matroskamux
/// take it too.
pub fn tag_language(pad: &gst::Pad, language: Option<&str>) {
    let Some(lang) = language.map(str::to_owned) else {
        return;
    };
    // GStreamer's tags hold ISO 639-1 where there is one (as the demuxers
    // write them); the muxers map it to the code their format wants.
    let code = crate::config::iso639_1(&lang).unwrap_or(lang);
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
        let Some(gst::PadProbeData::Event(e)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if e.type_() != gst::EventType::Caps {
            return gst::PadProbeReturn::Ok;
        }
        let mut tags = gst::TagList::new();
        tags.make_mut()
            .add::<gst::tags::LanguageCode>(&code.as_str(), gst::TagMergeMode::Replace);
        tags.make_mut().set_scope(gst::TagScope::Stream);
        // Straight to the peer, in this streaming thread, ahead of the
        // caps: pushed on this pad it would follow them (the caps are
        // already stored here, and sticky events leave in their order).
        if let Some(peer) = pad.peer() {
            let _ = peer.send_event(gst::event::Tag::new(tags));
        }
        gst::PadProbeReturn::Remove
    });
}

/// The HLS master playlist: one variant per rendition (`uri` of each),
/// each with the first audio track muxed in; the other tracks as
/// alternate renditions of the group `audio`, with their own playlists.
pub fn master_playlist(variants: &[(&Rendition, String)], audio: &[AudioOut]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    let with_audio = audio.len() > 1;
    if with_audio {
        for (k, t) in audio.iter().enumerate() {
            let lang = t
                .language
                .as_deref()
                .map(|l| {
                    let tag = crate::config::iso639_1(l).unwrap_or_else(|| l.to_owned());
                    format!(",LANGUAGE=\"{tag}\"")
                })
                .unwrap_or_default();
            // The first track is in the variants' own segments: no URI.
            let (default, uri) = if k == 0 {
                ("YES", String::new())
            } else {
                ("NO", format!(",URI=\"audio-{}/index.m3u8\"", t.id))
            };
            s.push_str(&format!(
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{GROUP}\",NAME=\"{}\"{lang},\
                 DEFAULT={default},AUTOSELECT=YES{uri}\n",
                t.id
            ));
        }
    }
    for (r, uri) in variants {
        let group = if with_audio {
            format!(",AUDIO=\"{GROUP}\"")
        } else {
            String::new()
        };
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\"{group}\n{uri}\n",
            r.bandwidth, r.size.0, r.size.1, r.codecs
        ));
    }
    s
}

pub fn write_master(
    path: &Path,
    variants: &[(&Rendition, String)],
    audio: &[AudioOut],
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written whole, then renamed: a player never reads half of it.
    let tmp = path.with_extension("m3u8.tmp");
    std::fs::write(&tmp, master_playlist(variants, audio))?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, lang: Option<&str>) -> AudioOut {
        AudioOut {
            id: id.into(),
            language: lang.map(str::to_owned),
            bitrate: 128_000,
        }
    }

    #[test]
    fn several_tracks_are_alternate_renditions_of_one_group() {
        gst::init().unwrap();
        let r = Rendition {
            index: 0,
            id: "video".into(),
            parser: "h264parse",
            size: (1280, 720),
            bandwidth: 4_128_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            frame: 40_000_000,
        };
        let audio = [
            track("eng", Some("eng")),
            track("spa", Some("spa")),
            track("x", None),
        ];
        let m = master_playlist(&[(&r, "index.m3u8".into())], &audio);
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(
            lines[2],
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"eng\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES"
        );
        assert_eq!(
            lines[3],
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"spa\",LANGUAGE=\"es\",DEFAULT=NO,AUTOSELECT=YES,URI=\"audio-spa/index.m3u8\""
        );
        assert!(
            !lines[4].contains("LANGUAGE"),
            "no language, none said: {}",
            lines[4]
        );
        assert!(lines[5].ends_with(",AUDIO=\"audio\""), "{}", lines[5]);
        assert_eq!(lines[6], "index.m3u8");
        // One track: no group, as before.
        let one = master_playlist(&[(&r, "video/index.m3u8".into())], &audio[..1]);
        assert!(
            !one.contains("EXT-X-MEDIA") && !one.contains("AUDIO="),
            "{one}"
        );
    }

    #[test]
    fn the_language_tag_goes_ahead_of_the_caps() {
        gst::init().unwrap();
        let pad = gst::Pad::builder(gst::PadDirection::Src)
            .name("src")
            .build();
        let peer = gst::Pad::builder(gst::PadDirection::Sink)
            .name("sink")
            .event_function(|_, _, _| true)
            .chain_function(|_, _, _| Ok(gst::FlowSuccess::Ok))
            .build();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        peer.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                let what = match e.view() {
                    gst::EventView::Tag(t) => {
                        let tags = t.tag();
                        let l = tags.get::<gst::tags::LanguageCode>().unwrap();
                        format!("tag:{}", l.get())
                    }
                    _ => e.type_().name().to_string(),
                };
                s.lock().unwrap().push(what);
            }
            gst::PadProbeReturn::Ok
        });
        pad.link(&peer).unwrap();
        pad.set_active(true).unwrap();
        peer.set_active(true).unwrap();
        tag_language(&pad, Some("spa"));
        assert!(pad.push_event(gst::event::StreamStart::new("s")));
        let caps = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .build();
        assert!(pad.push_event(gst::event::Caps::new(&caps)));
        assert!(pad.push_event(gst::event::Caps::new(&caps)));
        assert_eq!(
            *seen.lock().unwrap(),
            ["stream-start", "tag:es", "caps", "caps"],
            "the tag once, before the first caps"
        );
    }
}
