//! Any text as an input or output URI (`input_kind`, `output_kind`, what
//! config validation and the pipelines use) and through the redaction that
//! shows URIs in logs, status, D-Bus and metrics (`redact`, `redact_text`).
//! Never a panic; what is accepted keeps the documented limits; redacted
//! URIs carry no secret in the places that hold secrets.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nonstop_supervisor::uri::{self, Container, InputKind, OutputKind, Slate};

const SECRET_PARAMS: [&str; 6] = [
    "passphrase",
    "streamid",
    "key",
    "token",
    "password",
    "secret",
];

fn is_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|c| c.is_ascii_alphabetic())
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `shown` is `redact(raw)`.
fn check_redacted(raw: &str, shown: &str) {
    if url::Url::parse(raw).is_err() {
        // Unparseable: nothing of it but a scheme.
        let scheme = shown.strip_suffix("://***");
        assert!(
            shown == "***" || scheme.is_some_and(is_scheme),
            "unparseable {raw:?} shown as {shown:?}"
        );
        return;
    }
    let u = url::Url::parse(shown).unwrap_or_else(|e| panic!("{raw:?} redacted to {shown:?}: {e}"));
    assert!(
        u.password().is_none_or(|p| p == "***"),
        "{raw:?} shown with a password: {shown:?}"
    );
    for (k, v) in u.query_pairs() {
        if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
            assert_eq!(v, "***", "{raw:?} shown with {k}: {shown:?}");
        }
    }
    if matches!(u.scheme(), "rtmp" | "rtmps") {
        let segs: Vec<&str> = u.path_segments().map(|s| s.collect()).unwrap_or_default();
        if segs.len() >= 2 && !segs.last().is_some_and(|s| s.is_empty()) {
            assert_eq!(
                segs.last(),
                Some(&"***"),
                "{raw:?}: rtmp key shown: {shown:?}"
            );
        }
    }
}

/// What ends a URI quoted in a message (`redact_text`): an accepted URI
/// holds none of them, or a secret in it could be cut there.
fn ends_uri(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`')
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if uri::input_kind(s).is_ok() || uri::output_kind(s).is_ok() {
        assert!(!s.contains(ends_uri), "accepted {s:?}");
    }
    match uri::input_kind(s) {
        Ok(InputKind::Uri { uri, paced, .. }) => {
            if uri.starts_with("file:") {
                assert!(paced, "a file input is played against the clock");
                let u = url::Url::parse(&uri).expect("the bare file URI parses");
                assert!(u.query().is_none(), "nonstop's file options are taken out");
            }
            if uri.starts_with("udp:") {
                let u = url::Url::parse(&uri).expect("the bare udp URI parses");
                assert!(u.query().is_none(), "nonstop's udp options are taken out");
            }
        }
        Ok(InputKind::Test(t)) => {
            assert!((0.0..=20000.0).contains(&t.tone));
            if let Some((every, dur)) = t.stall {
                assert!(!dur.is_zero() && dur < every);
            }
        }
        Ok(InputKind::Slate(Slate::Colour { argb, .. })) => assert_eq!(argb >> 24, 0xff),
        Ok(InputKind::Slate(Slate::Image { path, .. })) => assert!(path.len() > 1),
        Err(e) => assert!(!e.is_empty()),
    }
    match uri::output_kind(s) {
        Ok(OutputKind::Hls {
            dir,
            segment,
            playlist,
        }) => {
            assert!(dir.len() > 1);
            assert!(segment >= Duration::from_secs(1));
            assert!((3..=1000).contains(&playlist));
        }
        Ok(OutputKind::File {
            path,
            container,
            segment,
        }) => {
            let ext = match container {
                Container::Ts => ".ts",
                Container::Mp4 => ".mp4",
                Container::Mkv => ".mkv",
            };
            assert!(path.ends_with(ext));
            assert!(segment.is_none_or(|d| d >= Duration::from_secs(1)));
        }
        Ok(_) => {}
        Err(e) => assert!(!e.is_empty()),
    }
    check_redacted(s, &uri::redact(s));
    let text = uri::redact_text(s);
    if !s.contains("://") {
        assert_eq!(text, s);
    }
});
