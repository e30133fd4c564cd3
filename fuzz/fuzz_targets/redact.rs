//! A URI with a known secret in it (a query parameter, a password or an
//! RTMP stream key), alone and quoted inside a message as GStreamer
//! writes them: nothing of the secret shows in what `redact` and
//! `redact_text` return, nor in the errors of `input_kind` / `output_kind`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nonstop_supervisor::uri;

const SCHEMES: [&str; 9] = [
    "srt", "rtmp", "rtmps", "rtsp", "udp", "http", "https", "hls", "file",
];
/// Secret parameter names, in the cases people write them.
const PARAMS: [&str; 8] = [
    "passphrase",
    "streamid",
    "key",
    "token",
    "password",
    "secret",
    "Passphrase",
    "KEY",
];
/// What a message may put around a URI.
const QUOTES: [(&str, &str); 6] = [
    (" ", " "),
    (" \"", "\" "),
    (" '", "' "),
    (" (", ") "),
    (" <", ">"),
    (": ", ", "),
];

#[derive(Arbitrary, Debug)]
struct Case {
    scheme: u8,
    host: String,
    path: String,
    /// 0: a query parameter, 1: the password, 2: the RTMP stream key.
    place: u8,
    param: u8,
    secret: String,
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
    quote: u8,
    prefix: String,
    suffix: String,
}

/// Characters a secret may hold unencoded in every place it can go (a
/// URI's userinfo, query and path all take these as they are).
fn secret_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$'()*+,;".contains(c)
}

/// A URI part from fuzz text, with its delimiters percent-encoded.
fn part(s: &str, keep: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || keep.contains(c) {
                c.to_string()
            } else {
                let mut b = [0; 4];
                c.encode_utf8(&mut b)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// The URI, and the message quoting it, with `secret` in place.
fn build(c: &Case, secret: &str) -> Option<(String, String)> {
    let scheme = SCHEMES[c.scheme as usize % SCHEMES.len()];
    let place = c.place % 3;
    if place == 2 && !scheme.starts_with("rtmp") {
        return None;
    }
    let host = part(&c.host, "-.");
    let path = part(&c.path, "-._~/");
    let query = |pairs: &[(String, String)]| -> Vec<String> {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", part(k, "-._~"), part(v, "-._~")))
            .collect()
    };
    let mut params = query(&c.before);
    if place == 0 {
        let name = PARAMS[c.param as usize % PARAMS.len()];
        params.push(format!("{name}={secret}"));
    }
    params.extend(query(&c.after));
    let userinfo = if place == 1 {
        format!("user:{secret}@")
    } else {
        String::new()
    };
    let path = if place == 2 {
        format!("/app{path}/{secret}")
    } else {
        path
    };
    let raw = format!(
        "{scheme}://{userinfo}{host}:9000{path}?{}",
        params.join("&")
    );
    let (open, close) = QUOTES[c.quote as usize % QUOTES.len()];
    let text = format!("{}{open}{raw}{close}{}", c.prefix, c.suffix);
    Some((raw, text))
}

/// Everything the secret could show in.
fn shown(raw: &str, text: &str) -> [String; 4] {
    [
        uri::redact(raw),
        uri::redact_text(text),
        uri::input_kind(raw).err().unwrap_or_default(),
        uri::output_kind(raw).err().unwrap_or_default(),
    ]
}

fuzz_target!(|c: Case| {
    let secret: String = c.secret.chars().filter(|&c| secret_char(c)).collect();
    // Some letter or digit: a key of dots only is a path's "." or ".."
    // (the URL parser takes them out), not a secret anyone uses.
    if !secret.chars().any(|c| c.is_ascii_alphanumeric()) {
        return;
    }
    let Some((raw, text)) = build(&c, &secret) else {
        return;
    };
    let shown_real = shown(&raw, &text);
    // What is shown must not depend on the secret at all: the same with a
    // plain stand-in of the same length. (This covers "the secret is not
    // in it", even in part, without false alarms from text that happens
    // to match.)
    let stand_in = "x".repeat(secret.len());
    let (raw_x, text_x) = build(&c, &stand_in).expect("same shape");
    let shown_x = shown(&raw_x, &text_x);
    let what = [
        "redact",
        "redact_text",
        "input_kind error",
        "output_kind error",
    ];
    for i in 0..4 {
        assert_eq!(
            shown_real[i], shown_x[i],
            "{}: {raw:?} (in {text:?}) shows its secret",
            what[i]
        );
    }
});
