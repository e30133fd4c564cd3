//! nonstopd, the channel supervisor: builds every channel of a config
//! (isolated input pipelines → channel pipeline with the switch pair and
//! encoders → isolated output pipelines) and keeps it on air.
//!
//! One module per job: `config` (a folder: schema, parsing, checks) and
//! `uri` read what the user wrote, `ingest` builds input pipelines
//! (`srtin` holds SRT listener sockets across their rebuilds), `encode`
//! the encoders, `output` the output pipelines, `channel` runs one
//! channel's state machine, `daemon` the process (signals, systemd, logs;
//! `glog` puts GLib's own log in ours; `watchdog` sends systemd's
//! keepalive from its own thread).

pub mod alerts;
pub mod backoff;
pub mod channel;
pub mod config;
pub mod daemon;
pub mod dbus;
pub mod element;
pub mod encode;
pub mod glog;
pub mod ingest;
mod logline;
pub mod metrics;
pub mod output;
pub mod srtin;
pub mod uri;
pub mod watchdog;
pub mod web;

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since the process started, on the monotonic clock: cheap
/// enough to take for every buffer, comparable across threads.
pub fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
