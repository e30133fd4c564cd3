//! Input and output URIs: what schemes mean, what each needs, and how to
//! show them without their secrets.

use url::Url;

const INPUT_SCHEMES: &str = "srt, rtmp, rtmps, rtsp, udp, http, https, file, test or slate";
const OUTPUT_SCHEMES: &str = "srt, udp, rtmp, rtmps, hls or file";

/// Query parameters that carry secrets.
const SECRET_PARAMS: [&str; 6] = [
    "passphrase",
    "streamid",
    "key",
    "token",
    "password",
    "secret",
];

fn parse(uri: &str) -> Result<Url, String> {
    Url::parse(uri).map_err(|e| format!("invalid URI \"{}\": {e}", redact(uri)))
}

fn need_host(u: &Url) -> Result<(), String> {
    match u.host_str() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err(format!("{}:// needs a host", u.scheme())),
    }
}

fn need_host_port(u: &Url) -> Result<(), String> {
    match (u.host_str(), u.port()) {
        (Some(h), Some(_)) if !h.is_empty() => Ok(()),
        _ => Err(format!(
            "{}:// needs a host and a port, e.g. {}://127.0.0.1:9000",
            u.scheme(),
            u.scheme()
        )),
    }
}

fn srt_mode(u: &Url) -> Result<(), String> {
    match u.query_pairs().find(|(k, _)| k == "mode") {
        None => Ok(()),
        Some((_, m)) if m == "caller" || m == "listener" => Ok(()),
        Some((_, m)) => Err(format!(
            "srt mode \"{m}\" is not supported; expected caller or listener"
        )),
    }
}

/// Checks an input URI; the error says what is wrong and what is expected.
pub fn check_input(uri: &str) -> Result<(), String> {
    let u = parse(uri)?;
    match u.scheme() {
        "srt" => need_host_port(&u).and_then(|_| srt_mode(&u)),
        "udp" => need_host_port(&u),
        "rtmp" | "rtmps" | "rtsp" | "http" | "https" => need_host(&u),
        "file" => {
            if u.path().len() > 1 {
                Ok(())
            } else {
                Err("file:// needs a path, e.g. file:///srv/media/loop.ts".into())
            }
        }
        "test" => TestSource::parse(&u).map(|_| ()),
        "slate" => Slate::parse(&u).map(|_| ()),
        other => Err(format!(
            "unsupported input scheme \"{other}\"; expected {INPUT_SCHEMES}"
        )),
    }
}

/// Checks an output URI.
pub fn check_output(uri: &str) -> Result<(), String> {
    let u = parse(uri)?;
    match u.scheme() {
        "srt" => need_host_port(&u).and_then(|_| srt_mode(&u)),
        "udp" => need_host_port(&u),
        "rtmp" | "rtmps" => need_host(&u),
        "hls" => {
            if u.path().len() > 1 {
                Ok(())
            } else {
                Err("hls:// needs a directory, e.g. hls:///var/www/live/news".into())
            }
        }
        "file" => {
            let p = u.path();
            if [".ts", ".mp4", ".mkv"].iter().any(|e| p.ends_with(e)) {
                Ok(())
            } else {
                Err(format!(
                    "file output \"{p}\" needs a .ts, .mp4 or .mkv name, e.g. file:///srv/rec/news.ts"
                ))
            }
        }
        other => Err(format!(
            "unsupported output scheme \"{other}\"; expected {OUTPUT_SCHEMES}"
        )),
    }
}

/// videotestsrc's patterns, by nick.
const PATTERNS: [&str; 25] = [
    "smpte",
    "snow",
    "black",
    "white",
    "red",
    "green",
    "blue",
    "checkers-1",
    "checkers-2",
    "checkers-4",
    "checkers-8",
    "circular",
    "blink",
    "smpte75",
    "zone-plate",
    "gamut",
    "chroma-zone-plate",
    "solid-color",
    "ball",
    "smpte100",
    "bar",
    "pinwheel",
    "spokes",
    "gradient",
    "colors",
];

/// `test://PATTERN?label=TEXT&tone=HZ&stall=EVERY/FOR`: a test pattern with
/// a label and a tone, for demos and drills. `stall=10s/3s` makes the input
/// stop sending for 3 s in every 10 s, so a failover can be watched
/// without any timer outside the input.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSource {
    pub pattern: String,
    pub label: Option<String>,
    /// Tone frequency in Hz; 0 = silence.
    pub tone: f64,
    pub stall: Option<(std::time::Duration, std::time::Duration)>,
}

impl TestSource {
    pub fn parse(u: &Url) -> Result<TestSource, String> {
        let pattern = u.host_str().unwrap_or("smpte").to_owned();
        if !PATTERNS.contains(&pattern.as_str()) {
            return Err(format!(
                "unknown test pattern \"{pattern}\"; expected one of {}",
                PATTERNS.join(", ")
            ));
        }
        let mut t = TestSource {
            pattern,
            label: None,
            tone: 440.0,
            stall: None,
        };
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "label" => t.label = Some(v.into_owned()),
                "tone" => {
                    t.tone = v
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=20000.0).contains(f))
                        .ok_or_else(|| {
                            format!("test tone \"{v}\" must be a frequency in Hz, 0 to 20000")
                        })?;
                }
                "stall" => {
                    let bad = || {
                        format!("test stall \"{v}\" must be EVERY/FOR, e.g. 10s/3s, with FOR shorter than EVERY")
                    };
                    let (every, dur) = v.split_once('/').ok_or_else(bad)?;
                    let every = humantime::parse_duration(every).map_err(|_| bad())?;
                    let dur = humantime::parse_duration(dur).map_err(|_| bad())?;
                    if dur.is_zero() || dur >= every {
                        return Err(bad());
                    }
                    t.stall = Some((every, dur));
                }
                other => {
                    return Err(format!(
                        "unknown test:// option \"{other}\"; expected label, tone or stall"
                    ))
                }
            }
        }
        Ok(t)
    }
}

/// `slate://colour/NAME_OR_0xRRGGBB?text=…` or `slate:///path/to/image.png?text=…`:
/// the input of last resort, always healthy.
#[derive(Debug, Clone, PartialEq)]
pub enum Slate {
    Colour { argb: u32, text: Option<String> },
    Image { path: String, text: Option<String> },
}

impl Slate {
    pub fn parse(u: &Url) -> Result<Slate, String> {
        let mut text = None;
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "text" => text = Some(v.into_owned()),
                other => {
                    return Err(format!(
                        "unknown slate:// option \"{other}\"; expected text"
                    ))
                }
            }
        }
        match u.host_str() {
            Some("colour") | Some("color") => {
                let name = u.path().trim_start_matches('/');
                let argb = match name {
                    "black" => 0xff00_0000,
                    "white" => 0xffff_ffff,
                    "grey" | "gray" => 0xff80_8080,
                    "blue" => 0xff00_00c0,
                    hex if hex.starts_with("0x") && hex.len() == 8 => {
                        0xff00_0000
                            | u32::from_str_radix(&hex[2..], 16).map_err(|_| bad_colour(name))?
                    }
                    _ => return Err(bad_colour(name)),
                };
                Ok(Slate::Colour { argb, text })
            }
            None | Some("") if u.path().len() > 1 => Ok(Slate::Image {
                path: u.path().to_owned(),
                text,
            }),
            _ => Err(
                "slate:// needs colour/NAME or an image path, e.g. slate://colour/black or \
                      slate:///srv/slates/standby.png"
                    .into(),
            ),
        }
    }
}

fn bad_colour(name: &str) -> String {
    format!("slate colour \"{name}\" must be black, white, grey, blue or 0xRRGGBB")
}

/// The URI as it may be shown in logs, status, D-Bus and metrics: passwords,
/// secret query parameters and RTMP stream keys become `***`.
pub fn redact(uri: &str) -> String {
    let Ok(mut u) = Url::parse(uri) else {
        // Unparseable: show only the scheme, it may hold anything.
        return match uri.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".into(),
        };
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    let has_secret = u
        .query_pairs()
        .any(|(k, _)| SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()));
    if has_secret {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.into_owned(),
                    if secret { "***".into() } else { v.into_owned() },
                )
            })
            .collect();
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    // rtmp://host/app/STREAMKEY: the last path segment is the key.
    if matches!(u.scheme(), "rtmp" | "rtmps") {
        let segs: Vec<String> = u
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        if segs.len() >= 2 && !segs.last().is_some_and(String::is_empty) {
            let mut kept = segs[..segs.len() - 1].to_vec();
            kept.push("***".into());
            u.set_path(&format!("/{}", kept.join("/")));
        }
    }
    u.to_string().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact("srt://10.0.0.1:9000?mode=caller&passphrase=topsecret1&latency=200"),
            "srt://10.0.0.1:9000?mode=caller&passphrase=***&latency=200"
        );
        assert_eq!(
            redact("rtmp://live.example.com/app/streamkey123"),
            "rtmp://live.example.com/app/***"
        );
        assert_eq!(
            redact("rtsp://user:pw@cam1/stream"),
            "rtsp://user:***@cam1/stream"
        );
        assert_eq!(redact("udp://239.1.1.1:5000"), "udp://239.1.1.1:5000");
        assert_eq!(
            redact("slate://colour/black?text=Please%20stand%20by"),
            "slate://colour/black?text=Please%20stand%20by"
        );
        assert_eq!(redact("srt:// bad uri passphrase=x"), "srt://***");
    }

    #[test]
    fn inputs_and_outputs_are_checked() {
        assert!(check_input("srt://0.0.0.0:9000?mode=listener").is_ok());
        assert_eq!(
            check_input("srt://0.0.0.0:9000?mode=rendezvous").unwrap_err(),
            "srt mode \"rendezvous\" is not supported; expected caller or listener"
        );
        assert_eq!(
            check_input("udp://239.1.1.1").unwrap_err(),
            "udp:// needs a host and a port, e.g. udp://127.0.0.1:9000"
        );
        assert!(check_input("test://smpte?label=A").is_ok());
        assert!(check_input("slate://colour/black").is_ok());
    }

    #[test]
    fn test_and_slate_options() {
        let t = TestSource::parse(
            &Url::parse("test://ball?label=BACKUP&tone=880&stall=10s/3s").unwrap(),
        )
        .unwrap();
        assert_eq!(t.pattern, "ball");
        assert_eq!(t.label.as_deref(), Some("BACKUP"));
        assert_eq!(t.tone, 880.0);
        assert_eq!(
            t.stall,
            Some((
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(3)
            ))
        );
        assert!(check_input("test://plaid")
            .unwrap_err()
            .starts_with("unknown test pattern \"plaid\""));
        assert_eq!(
            check_input("test://smpte?stall=3s/10s").unwrap_err(),
            "test stall \"3s/10s\" must be EVERY/FOR, e.g. 10s/3s, with FOR shorter than EVERY"
        );
        assert_eq!(
            check_input("test://smpte?lable=x").unwrap_err(),
            "unknown test:// option \"lable\"; expected label, tone or stall"
        );
        assert_eq!(
            Slate::parse(&Url::parse("slate://colour/0x1f3a5f?text=Stand%20by").unwrap()).unwrap(),
            Slate::Colour {
                argb: 0xff1f_3a5f,
                text: Some("Stand by".into())
            }
        );
        assert_eq!(
            Slate::parse(&Url::parse("slate:///srv/slates/standby.png").unwrap()).unwrap(),
            Slate::Image {
                path: "/srv/slates/standby.png".into(),
                text: None
            }
        );
        assert_eq!(
            check_input("slate://colour/mauve").unwrap_err(),
            "slate colour \"mauve\" must be black, white, grey, blue or 0xRRGGBB"
        );
        assert!(check_output("hls:///var/www/live/news").is_ok());
        assert!(check_output("file:///srv/rec/news.mp4").is_ok());
        assert!(check_output("file:///srv/rec/news.avi")
            .unwrap_err()
            .contains(".ts, .mp4 or .mkv"));
        assert_eq!(
            check_output("rtsp://cam/x").unwrap_err(),
            "unsupported output scheme \"rtsp\"; expected srt, udp, rtmp, rtmps, hls or file"
        );
    }
}
