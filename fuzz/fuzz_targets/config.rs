//! Any text as a config file (`Config::parse`, what `nonstopd check`,
//! start-up and `Reload` run). Never a panic; every error is placed inside
//! the text (line and column from 1) and worded; a config that loads keeps
//! the promises validation makes to the rest of the daemon.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use nonstop_supervisor::config::Config;
use nonstop_supervisor::uri::{self, OutputKind};

const FILE: &str = "fuzz.toml";

/// What `check_id` accepts: ids name D-Bus objects and metric labels.
fn plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(FILE, text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "an error without a message");
            let lines: Vec<&str> = text.split('\n').collect();
            for e in &errors {
                assert_eq!(e.file, FILE);
                assert!(
                    e.line >= 1 && e.line <= lines.len(),
                    "line out of the text: {e:?}"
                );
                let width = lines[e.line - 1].len();
                assert!(
                    e.column >= 1 && e.column <= width + 1,
                    "column out of the line: {e:?}"
                );
                assert!(!e.message.trim().is_empty(), "no message: {e:?}");
                assert!(!e.path.is_empty(), "no key path: {e:?}");
                let _ = e.to_string();
            }
        }
        Ok(config) => {
            assert!(!config.channels.is_empty());
            let mut channels = HashSet::new();
            for ch in &config.channels {
                let id = ch.id.get_ref();
                assert!(plain(id), "channel id {id:?}");
                assert!(channels.insert(id.clone()), "duplicate channel id {id:?}");
                assert!(!ch.inputs.is_empty(), "channel {id} without input");
                let mut ids = HashSet::new();
                for i in &ch.inputs {
                    assert!(plain(i.id.get_ref()), "input id {:?}", i.id.get_ref());
                    assert!(ids.insert(i.id.get_ref().clone()), "duplicate input id");
                    // The input pipeline is built from it.
                    uri::input_kind(i.uri.get_ref()).expect("a loaded input URI is valid");
                    let _ = uri::redact(i.uri.get_ref());
                }
                let mut encoders = HashSet::new();
                for e in &ch.encoders {
                    assert!(encoders.insert(e.id().to_owned()), "duplicate encoder id");
                }
                let mut ids = HashSet::new();
                for o in &ch.outputs {
                    assert!(plain(o.id.get_ref()), "output id {:?}", o.id.get_ref());
                    assert!(ids.insert(o.id.get_ref().clone()), "duplicate output id");
                    uri::output_kind(o.uri.get_ref()).expect("a loaded output URI is valid");
                    for b in &o.backup {
                        let kind = uri::output_kind(b.get_ref()).expect("a loaded backup URI");
                        assert!(
                            !matches!(kind, OutputKind::Hls { .. } | OutputKind::File { .. }),
                            "a backup that is not a network output"
                        );
                    }
                    for name in o.encoders.iter().flatten() {
                        assert!(encoders.contains(name.get_ref()), "unknown encoder");
                    }
                    assert!(o.failover_after >= 1);
                }
            }
            for a in &config.alerts {
                let u = url::Url::parse(a.url.get_ref()).expect("a loaded webhook URL");
                assert!(matches!(u.scheme(), "http" | "https"));
                // The webhook sends them as they are: each must be a valid
                // HTTP header, or every alert fails to send.
                for (k, v) in &a.headers {
                    assert!(
                        http::HeaderName::from_bytes(k.as_bytes()).is_ok(),
                        "a loaded webhook header name {k:?} is not a valid HTTP header name"
                    );
                    assert!(
                        http::HeaderValue::from_str(v.get_ref()).is_ok(),
                        "a loaded webhook header value {v:?} is not a valid HTTP header value"
                    );
                }
            }
        }
    }
});
