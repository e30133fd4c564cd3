//! What D-Bus callers send that nonstop's own code reads (zbus decodes the
//! messages; these are the checks after it): `SetMode`'s mode, `Drill`'s
//! kind and duration, `InsertCue`'s kind and break, and the channel ids in object paths, escaped by
//! nonstopd and read back by nonstopctl from paths it gets off the bus.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nonstop_supervisor::channel::{
    check_cue_duration, check_drill_duration, parse_cue_kind, parse_drill_kind, parse_mode,
};
use nonstop_supervisor::dbus::{channel_id, channel_path, escape, CHANNEL_PREFIX};

const DRILLS: [&str; 5] = [
    "input-stall",
    "input-black",
    "input-silence",
    "encoder-fail",
    "output-fail",
];

#[derive(Arbitrary, Debug)]
enum Call {
    SetMode(String),
    Drill {
        kind: String,
        duration_ms: u64,
    },
    InsertCue {
        kind: String,
        duration_ms: u64,
    },
    /// A channel id becoming an object path (and read back).
    Id(String),
    /// Any object path a client may receive.
    Path(String),
}

fuzz_target!(|call: Call| match call {
    Call::SetMode(mode) => {
        let ok = mode == "auto" || mode == "manual";
        match parse_mode(&mode) {
            Ok(m) => assert!(ok && m == mode),
            Err(e) => assert!(!ok && e.to_string().contains("auto or manual")),
        }
    }
    Call::Drill { kind, duration_ms } => {
        assert_eq!(
            parse_drill_kind(&kind).is_ok(),
            DRILLS.contains(&kind.as_str())
        );
        // The D-Bus method takes milliseconds.
        let d = Duration::from_millis(duration_ms);
        assert_eq!(
            check_drill_duration(d).is_ok(),
            (100..=3_600_000).contains(&duration_ms)
        );
    }
    Call::InsertCue { kind, duration_ms } => match parse_cue_kind(&kind) {
        Ok(k) => {
            assert!(kind == "splice-out" || kind == "splice-in");
            let d = Duration::from_millis(duration_ms);
            let ok = duration_ms == 0 || (kind == "splice-out" && (1000..=86_400_000).contains(&duration_ms));
            assert_eq!(check_cue_duration(k, d).is_ok(), ok);
        }
        Err(e) => assert!(e.to_string().contains("splice-out or splice-in")),
    },
    Call::Id(id) => {
        let e = escape(&id);
        assert!(!e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        // Panics (expect) if the path were invalid.
        let path = channel_path(&id);
        assert_eq!(channel_id(path.as_str()).as_deref(), Some(id.as_str()));
    }
    Call::Path(p) => {
        let _ = channel_id(&p);
        assert!(channel_id(&format!("{CHANNEL_PREFIX}{p}")).is_some());
    }
});
