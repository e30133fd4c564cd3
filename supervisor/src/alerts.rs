//! Alerts: what an operator must hear about (an input lost, a failover,
//! the channel off air, an encoder failover, an output down), sent to the
//! `[[alert]]` webhooks besides the log line and the D-Bus `Alarm` signal.
//!
//! Each webhook has its own worker and queue: alerts go out in order, one
//! at a time, retried with backoff; a slow or dead receiver delays only
//! its own queue, never the channels (sending never blocks).

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::backoff::Backoff;
use crate::config::AlertSink;

/// Alerts a webhook may be behind; beyond, new ones are dropped for that
/// webhook (and the log says so): the order of what it gets is kept.
const QUEUE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub channel: String,
    /// The input, output or encoder concerned; the channel id for
    /// channel-wide alerts.
    pub target: String,
    /// `input-lost`, `failover`, `off-air`, `encoder-failover`, `output-down`.
    pub kind: String,
    /// true: raised; false: cleared.
    pub raised: bool,
    /// µs since the Unix epoch.
    pub time_us: u64,
    /// One line a person reads.
    pub summary: String,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone, Default)]
pub struct Alerts {
    sinks: Vec<mpsc::Sender<Alert>>,
}

impl Alerts {
    /// Starts one worker per sink on the current tokio runtime.
    pub fn start(sinks: &[AlertSink]) -> Alerts {
        let client = reqwest::Client::builder().build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                warn!("alerts: no HTTP client ({e}); webhooks are off");
                return Alerts::default();
            }
        };
        Alerts {
            sinks: sinks
                .iter()
                .map(|s| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(worker(client.clone(), s.clone(), rx));
                    tx
                })
                .collect(),
        }
    }

    /// Logs the alert and queues it for every webhook.
    pub fn send(&self, alert: Alert) {
        if alert.raised {
            warn!(channel = %alert.channel, target = %alert.target, kind = %alert.kind, "alert raised: {}", alert.summary);
        } else {
            info!(channel = %alert.channel, target = %alert.target, kind = %alert.kind, "alert cleared: {}", alert.summary);
        }
        for tx in &self.sinks {
            if let Err(mpsc::error::TrySendError::Full(a)) = tx.try_send(alert.clone()) {
                warn!(channel = %a.channel, kind = %a.kind, "alert webhook is {QUEUE} alerts behind; this one is dropped");
            }
        }
    }
}

/// Delivers `rx` to one webhook, in order; an alert is retried (backoff
/// 1 s doubling to 60 s) until the receiver takes it with a 2xx.
async fn worker(client: reqwest::Client, sink: AlertSink, mut rx: mpsc::Receiver<Alert>) {
    let url = sink.url.get_ref().clone();
    let shown = crate::uri::redact(&url);
    while let Some(alert) = rx.recv().await {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            let mut req = client.post(&url).timeout(sink.timeout).json(&alert);
            for (k, v) in &sink.headers {
                req = req.header(k, v.get_ref());
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    let wait = backoff.fail();
                    warn!(webhook = %shown, status = %r.status(), retry_in = ?wait, "alert webhook refused");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    let wait = backoff.fail();
                    warn!(webhook = %shown, retry_in = ?wait, "alert webhook unreachable: {}", crate::uri::redact_text(&e.to_string()));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
