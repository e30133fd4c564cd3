//! The checks a config must pass after its types: ids, URIs, encoder
//! settings, outputs' encoders and backups, listening ports, alert sinks.
//! All mistakes are reported, each where it is.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::encoder::{Backend, Codec, Encoder, Instance, Profile, Redundancy};
use super::error::Errors;
use super::schema::Config;

impl Config {
    pub(super) fn validate(&self, errors: &mut Errors) {
        for (a, sink) in self.alerts.iter().enumerate() {
            let url = sink.url.get_ref();
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                _ => errors.push(
                    sink.url.span(),
                    format!("alert[{a}].url"),
                    format!(
                        "\"{}\" is not an http:// or https:// URL",
                        crate::uri::redact(url)
                    ),
                ),
            }
            // Sent as they are: one the HTTP client refuses fails every
            // delivery, and the webhook's queue waits on it for ever.
            for (name, value) in &sink.headers {
                let at = format!("alert[{a}].headers.{name}");
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    errors.push(
                        value.span(),
                        at,
                        format!(
                            "\"{name}\" is not an HTTP header name: letters, digits and !#$%&'*+-.^_`|~ only"
                        ),
                    );
                } else if reqwest::header::HeaderValue::from_str(value.get_ref()).is_err() {
                    // The value is not shown: it is often a token.
                    errors.push(
                        value.span(),
                        at,
                        "an HTTP header value cannot hold a newline or another control character",
                    );
                }
            }
        }
        if self.channels.is_empty() {
            errors.push(
                0..0,
                "channel",
                "no channel: add at least one [[channel]] table",
            );
        }
        let mut channel_ids = HashSet::new();
        if let Some(fleet) = &self.fleet {
            fleet.validate(errors);
        }
        for (c, ch) in self.channels.iter().enumerate() {
            let at = format!("channel[{c}]");
            ch.fleet
                .validate(&at, ch.id.span(), self.fleet.as_ref(), errors);
            check_id(
                errors,
                &ch.id,
                &format!("{at}.id"),
                &mut channel_ids,
                "channel",
            );
            if ch.inputs.is_empty() {
                errors.push(
                    ch.id.span(),
                    format!("{at}.input"),
                    "no input: add at least one [[channel.input]] table",
                );
            }
            if ch.max_return_after < ch.return_after {
                errors.push(
                    ch.id.span(),
                    format!("{at}.max_return_after"),
                    format!(
                        "{} is shorter than return_after ({}): a flapping input's hold-off \
                         could never grow; make it at least return_after",
                        humantime::format_duration(ch.max_return_after),
                        humantime::format_duration(ch.return_after)
                    ),
                );
            }
            check_tracks(ch, &at, errors);
            let mut ids = HashSet::new();
            for (i, input) in ch.inputs.iter().enumerate() {
                let at = format!("{at}.input[{i}]");
                check_id(errors, &input.id, &format!("{at}.id"), &mut ids, "input");
                if let Err(e) = crate::uri::check_input(input.uri.get_ref()) {
                    errors.push(input.uri.span(), format!("{at}.uri"), e);
                }
                check_track_map(ch, input, &at, errors);
            }
            let mut encoder_ids = HashSet::new();
            for (e, enc) in ch.encoders.iter().enumerate() {
                let at = format!("{at}.encoder[{e}]");
                let span = enc.id.as_ref().map_or(ch.id.span(), |i| i.span());
                match &enc.id {
                    Some(id) => {
                        check_id(errors, id, &format!("{at}.id"), &mut encoder_ids, "encoder")
                    }
                    None if ch.encoders.len() > 1 => errors.push(
                        span.clone(),
                        format!("{at}.id"),
                        "an id is needed when a channel has several encoders (outputs name them)",
                    ),
                    None => {
                        encoder_ids.insert("video".to_owned());
                    }
                }
                enc.validate(&at, span, errors);
            }
            let mut ids = HashSet::new();
            for (o, output) in ch.outputs.iter().enumerate() {
                let at = format!("{at}.output[{o}]");
                check_id(errors, &output.id, &format!("{at}.id"), &mut ids, "output");
                let kind = match crate::uri::output_kind(output.uri.get_ref()) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        errors.push(output.uri.span(), format!("{at}.uri"), e);
                        None
                    }
                };
                let hls = matches!(kind, Some(crate::uri::OutputKind::Hls { .. }));
                if let Some(list) = &output.encoders {
                    if list.is_empty() {
                        errors.push(
                            output.id.span(),
                            format!("{at}.encoders"),
                            "names no encoder",
                        );
                    }
                    if list.len() > 1 && !hls {
                        errors.push(
                            list[1].span(),
                            format!("{at}.encoders"),
                            "only an hls:// output carries several encoders (renditions); this one carries one",
                        );
                    }
                    for (i, name) in list.iter().enumerate() {
                        if !encoder_ids.contains(name.get_ref()) {
                            let known: Vec<&str> = ch.encoders.iter().map(|e| e.id()).collect();
                            errors.push(
                                name.span(),
                                format!("{at}.encoders[{i}]"),
                                format!(
                                    "no encoder \"{}\"; the channel has {}",
                                    name.get_ref(),
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
                for (b, backup) in output.backup.iter().enumerate() {
                    let at = format!("{at}.backup[{b}]");
                    match crate::uri::output_kind(backup.get_ref()) {
                        Err(e) => errors.push(backup.span(), at, e),
                        Ok(
                            crate::uri::OutputKind::Hls { .. }
                            | crate::uri::OutputKind::File { .. },
                        ) => errors.push(
                            backup.span(),
                            at,
                            "backup destinations are for network outputs (srt, udp, rtmp, rtmps)",
                        ),
                        Ok(_) => {}
                    }
                }
                if !output.backup.is_empty()
                    && (hls || matches!(kind, Some(crate::uri::OutputKind::File { .. })))
                {
                    errors.push(
                        output.uri.span(),
                        format!("{at}.backup"),
                        "backup destinations are for network outputs (srt, udp, rtmp, rtmps)",
                    );
                }
                if output.failover_after == 0 {
                    errors.push(
                        output.id.span(),
                        format!("{at}.failover_after"),
                        "must be at least 1",
                    );
                }
            }
        }
        self.check_listeners(errors);
    }

    /// Two sockets of this config listening on one port: the second would
    /// fail to bind at run time, over and over.
    fn check_listeners(&self, errors: &mut Errors) {
        let mut seen: Vec<(String, String, u16, String)> = Vec::new();
        for (c, ch) in self.channels.iter().enumerate() {
            let inputs = ch
                .inputs
                .iter()
                .enumerate()
                .map(|(i, x)| (format!("channel[{c}].input[{i}].uri"), &x.uri, true));
            let outputs = ch
                .outputs
                .iter()
                .enumerate()
                .map(|(o, x)| (format!("channel[{c}].output[{o}].uri"), &x.uri, false));
            for (at, uri, input) in inputs.chain(outputs) {
                let Some((host, port)) = crate::uri::listening_on(uri.get_ref(), input) else {
                    continue;
                };
                let any = |h: &str| matches!(h, "0.0.0.0" | "::" | "");
                if let Some((first, ..)) = seen
                    .iter()
                    .find(|(_, h, p, _)| *p == port && (*h == host || any(h) || any(&host)))
                {
                    errors.push(
                        uri.span(),
                        at.clone(),
                        format!(
                            "port {port} is already where {first} listens; two sockets cannot share it"
                        ),
                    );
                } else {
                    seen.push((at, host, port, String::new()));
                }
            }
        }
    }
}

impl Encoder {
    fn validate(&self, at: &str, span: Range<usize>, errors: &mut Errors) {
        let backend_span =
            |b: &Option<Spanned<Backend>>| b.as_ref().map_or(span.clone(), |b| b.span());
        // Whether a backend can encode the codec is the encoders' to say:
        // crate::encode::check_backends, after loading.
        if self.backup_backend.is_some() && self.redundancy == Redundancy::None {
            errors.push(
                backend_span(&self.backup_backend),
                format!("{at}.backup_backend"),
                "needs redundancy = \"active-active\" or \"active-passive\"",
            );
        }
        match (self.width, self.height) {
            (None, None) => {}
            (Some(w), Some(h))
                if (16..=7680).contains(&w)
                    && (16..=4320).contains(&h)
                    && w % 2 == 0
                    && h % 2 == 0 => {}
            (Some(_), Some(_)) => errors.push(
                span.clone(),
                format!("{at}.width"),
                "width and height must be even, 16 to 7680 × 16 to 4320",
            ),
            _ => errors.push(
                span.clone(),
                format!("{at}.width"),
                "give both width and height, or neither",
            ),
        }
        if let Some(p) = &self.profile {
            let ok = match self.codec {
                Codec::H264 => matches!(
                    p.get_ref(),
                    Profile::Baseline | Profile::Main | Profile::High
                ),
                Codec::H265 => matches!(p.get_ref(), Profile::Main | Profile::Main10),
            };
            if !ok {
                errors.push(
                    p.span(),
                    format!("{at}.profile"),
                    format!(
                        "{} has no profile {}; expected {}",
                        self.codec.name(),
                        p.get_ref().name(),
                        match self.codec {
                            Codec::H264 => "baseline, main or high",
                            Codec::H265 => "main or main10",
                        }
                    ),
                );
            }
        }
        if self.bframes > 0 && self.low_latency {
            errors.push(
                span.clone(),
                format!("{at}.bframes"),
                "low_latency = true means no B-frames: set bframes = 0 or low_latency = false",
            );
        }
        if self.bframes > 0 && self.profile() == Profile::Baseline {
            errors.push(
                span.clone(),
                format!("{at}.bframes"),
                "profile baseline has no B-frames",
            );
        }
        if self.bframes > 16 {
            errors.push(span.clone(), format!("{at}.bframes"), "at most 16");
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.instance == Instance::Backup && self.redundancy == Redundancy::None {
                errors.push(
                    span.clone(),
                    format!("{at}.faults[{i}].instance"),
                    "there is no backup instance without redundancy",
                );
            }
        }
        if self.stall_timeout < Duration::from_millis(100) {
            errors.push(
                span.clone(),
                format!("{at}.stall_timeout"),
                "must be at least 100ms",
            );
        }
        if self.video_bitrate == 0 {
            errors.push(
                span.clone(),
                format!("{at}.video_bitrate"),
                "must be above 0",
            );
        }
    }
}

/// The channel's audio tracks: ids (they name outputs' streams, HLS
/// renditions and alarms: no '_'), languages libgsttag knows, and formats
/// an AAC encoder takes.
fn check_tracks(ch: &super::Channel, at: &str, errors: &mut Errors) {
    let span = ch.id.span();
    if ch.audio.len() > MAX_TRACKS {
        errors.push(
            span.clone(),
            format!("{at}.audio"),
            format!("{} audio tracks: at most {MAX_TRACKS}", ch.audio.len()),
        );
    }
    let mut seen = HashSet::new();
    for (t, track) in ch.audio.iter().enumerate() {
        let at = format!("{at}.audio[{t}]");
        let id = &track.id;
        let ok = !id.is_empty()
            && id.len() <= 32
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            errors.push(
                span.clone(),
                format!("{at}.id"),
                format!("invalid audio track id \"{id}\"; expected 1 to 32 letters, digits or '-'"),
            );
        } else if !seen.insert(id.clone()) {
            errors.push(
                span.clone(),
                format!("{at}.id"),
                format!("duplicate audio track id \"{id}\""),
            );
        }
        if let Some(l) = &track.language {
            if super::iso639_2b(l).is_none() {
                errors.push(
                    span.clone(),
                    format!("{at}.language"),
                    format!("\"{l}\" is not an ISO 639 language code (such as \"eng\" or \"spa\")"),
                );
            }
        }
        let f = &track.format;
        if !matches!(f.channels, 1 | 2 | 6) || !(8000..=96000).contains(&f.rate) {
            errors.push(
                span.clone(),
                at.clone(),
                format!(
                    "{} Hz, {} channels: AAC here takes 8000 to 96000 Hz, 1, 2 or 6 channels",
                    f.rate, f.channels
                ),
            );
        }
    }
}

/// At most this many audio tracks per channel (each is a switch, an
/// encoder and a stream in every output).
pub const MAX_TRACKS: usize = 8;

/// `[channel.input.audio]`: names tracks of the channel, with languages
/// libgsttag knows.
fn check_track_map(ch: &super::Channel, input: &super::Input, at: &str, errors: &mut Errors) {
    for (track, source) in &input.audio {
        let path = format!("{at}.audio.{track}");
        if !ch.audio.iter().any(|t| &t.id == track) {
            let known: Vec<&str> = ch.audio.iter().map(|t| t.id.as_str()).collect();
            errors.push(
                input.id.span(),
                path,
                format!(
                    "the channel has no audio track \"{track}\" (its tracks: {})",
                    known.join(", ")
                ),
            );
        } else if let super::TrackSource::Language(l) = source {
            if super::iso639_2b(l).is_none() {
                errors.push(
                    input.id.span(),
                    path,
                    format!("\"{l}\" is not an ISO 639 language code nor a stream index"),
                );
            }
        }
    }
}

/// Ids name D-Bus objects and metrics labels: keep them plain.
fn check_id(
    errors: &mut Errors,
    id: &Spanned<String>,
    path: &str,
    seen: &mut HashSet<String>,
    what: &str,
) {
    let s = id.get_ref();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errors.push(
            id.span(),
            path,
            format!("invalid {what} id \"{s}\"; expected 1 to 64 letters, digits, '-' or '_'"),
        );
    } else if !seen.insert(s.clone()) {
        errors.push(id.span(), path, format!("duplicate {what} id \"{s}\""));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::fixtures::{errors, GOOD, LADDER};
    use crate::config::Config;

    #[test]
    fn two_listeners_on_one_port_are_refused() {
        let text = GOOD.replace(
            "[[channel.output]]",
            "[[channel.output]]\nid = \"relay\"\nuri = \"srt://0.0.0.0:9000?mode=listener\"\n\n[[channel.output]]",
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("channel[0].output[0].uri: port 9000 is already where channel[0].input[0].uri listens"),
            "{e:?}"
        );
    }

    #[test]
    fn flap_damping_keys_are_read_and_checked() {
        let text = GOOD.replace(
            "timeout = \"750ms\"",
            "timeout = \"750ms\"\nclean_gap = \"40ms\"\nflap_window = \"1m\"\nmax_return_after = \"20s\"",
        );
        let c = Config::parse("ch.toml", &text).unwrap();
        let ch = &c.channels[0];
        assert_eq!(
            (ch.clean_gap, ch.flap_window, ch.max_return_after),
            (
                Duration::from_millis(40),
                Duration::from_secs(60),
                Duration::from_secs(20)
            )
        );
        let text = GOOD.replace("timeout = \"750ms\"", "max_return_after = \"2s\"");
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("channel[0].max_return_after: 2s is shorter than return_after (5s)"),
            "{e:?}"
        );
    }

    #[test]
    fn webhook_headers_must_be_valid_http() {
        let alert = "[[alert]]\ntype = \"webhook\"\nurl = \"https://a.example/x\"\n";
        let text = format!(
            "{alert}headers = {{ \"X Key\" = \"v\", Authorization = \"Bearer a\\nb\" }}\n{GOOD}"
        );
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:4:44: alert[0].headers.Authorization: an HTTP header value cannot hold \
                 a newline or another control character",
                "ch.toml:4:23: alert[0].headers.X Key: \"X Key\" is not an HTTP header name: \
                 letters, digits and !#$%&'*+-.^_`|~ only",
            ]
        );
        let text = format!("{alert}headers = {{ Authorization = \"Bearer x\" }}\n{GOOD}");
        assert!(Config::parse("ch.toml", &text).is_ok());
    }

    #[test]
    fn semantic_errors_are_all_reported_with_positions() {
        let text = GOOD
            .replace("id = \"slate\"", "id = \"primary\"")
            .replace("rtmp://live", "ftp://live");
        assert_eq!(
            errors(&text),
            vec![
                "ch.toml:12:6: channel[0].input[1].id: duplicate input id \"primary\"",
                "ch.toml:17:7: channel[0].output[0].uri: unsupported output scheme \"ftp\"; \
                 expected srt, udp, rtmp, rtmps, hls or file",
            ]
        );
    }

    #[test]
    fn audio_tracks_and_the_inputs_maps_are_read_and_checked() {
        let tracks = r#"
[[channel]]
id = "news"

[[channel.audio]]
id = "eng"
language = "eng"

[[channel.audio]]
id = "spa"
language = "es"
bitrate = 96

[[channel.input]]
id = "a"
uri = "test://smpte"
audio = { spa = 2, eng = "en" }
"#;
        let c = Config::parse("ch.toml", tracks).unwrap();
        let ch = &c.channels[0];
        let ids: Vec<&str> = ch.audio.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["eng", "spa"]);
        assert_eq!(ch.audio[1].language.as_deref(), Some("es"));
        assert_eq!(ch.audio[1].format.bitrate, 96);
        assert_eq!(ch.audio[1].format.rate, 48000);
        use crate::config::TrackSource;
        assert_eq!(ch.inputs[0].audio["spa"], TrackSource::Index(2));
        assert_eq!(
            ch.inputs[0].audio["eng"],
            TrackSource::Language("en".into())
        );

        let bad = tracks
            .replace("id = \"spa\"", "id = \"eng\"")
            .replace("language = \"eng\"", "language = \"english please\"")
            .replace("spa = 2", "fre = 2");
        assert_eq!(
            errors(&bad),
            vec![
                "ch.toml:3:6: channel[0].audio[0].language: \"english please\" is not an ISO 639 \
                 language code (such as \"eng\" or \"spa\")",
                "ch.toml:3:6: channel[0].audio[1].id: duplicate audio track id \"eng\"",
                "ch.toml:15:6: channel[0].input[0].audio.fre: the channel has no audio track \"fre\" \
                 (its tracks: eng, eng)",
            ]
        );
        let typo = tracks.replace("bitrate = 96", "bitrat = 96");
        let e = errors(&typo).join("\n");
        assert!(e.contains("unknown field `bitrat`"), "{e}");
        let neither = tracks.replace("[[channel.input]]", "audio = 3\n[[channel.input]]");
        assert!(!errors(&neither).is_empty());
    }

    #[test]
    fn empty_config_needs_a_channel() {
        assert_eq!(
            errors(""),
            vec!["ch.toml:1:1: channel: no channel: add at least one [[channel]] table"]
        );
    }

    #[test]
    fn encoder_and_output_mistakes_are_reported_where_they_are() {
        let text = LADDER
            .replace(
                "id = \"sd\"\n",
                "id = \"sd\"\nprofile = \"main10\"\nbframes = 2\n",
            )
            .replace("encoders = [\"sd\"]", "encoders = [\"sd\", \"uhd\"]")
            .replace(
                "backup = [\"rtmp://b.example/live/key\"]",
                "backup = [\"hls:///x\"]",
            );
        let e = errors(&text);
        assert!(
            e.iter().any(|l| l.contains(
                "encoder[1].profile: h264 has no profile main10; expected baseline, main or high"
            )),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.contains("encoder[1].bframes: low_latency = true means no B-frames")),
            "{e:#?}"
        );
        assert!(
            e.iter().any(|l| l
                .contains("output[1].encoders: only an hls:// output carries several encoders")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l
                    .contains("output[1].encoders[1]: no encoder \"uhd\"; the channel has hd, sd")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l
                    .contains("output[1].backup[0]: backup destinations are for network outputs")),
            "{e:#?}"
        );
        let text = LADDER.replacen("id = \"hd\"\n", "", 1);
        assert!(errors(&text)
            .iter()
            .any(|l| l
                .contains("encoder[0].id: an id is needed when a channel has several encoders")));
    }
}
