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

    /// Logs the alert and queues it for every webhook; returns for how
    /// many webhooks it was dropped (their queue full).
    pub fn send(&self, alert: Alert) -> usize {
        if alert.raised {
            warn!(channel = %alert.channel, event = "alert-raised", target = %alert.target, kind = %alert.kind, "alert raised: {}", alert.summary);
        } else {
            info!(channel = %alert.channel, event = "alert-cleared", target = %alert.target, kind = %alert.kind, "alert cleared: {}", alert.summary);
        }
        let mut dropped = 0;
        for tx in &self.sinks {
            if let Err(mpsc::error::TrySendError::Full(a)) = tx.try_send(alert.clone()) {
                warn!(channel = %a.channel, kind = %a.kind, "alert webhook is {QUEUE} alerts behind; this one is dropped");
                dropped += 1;
            }
        }
        dropped
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn sink(port: u16, timeout_ms: u64) -> AlertSink {
        toml::from_str(&format!(
            "type = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\ntimeout = \"{timeout_ms}ms\""
        ))
        .unwrap()
    }

    fn alert(n: u32) -> Alert {
        Alert {
            channel: "ch".into(),
            target: format!("t{n}"),
            kind: "failover".into(),
            raised: true,
            time_us: 0,
            summary: format!("alert {n}"),
        }
    }

    /// What a receiver does with the k-th request.
    #[derive(Clone, Copy)]
    enum Answer {
        Status(u16),
        /// Never answers (the sender's timeout must end it).
        Hang,
    }

    /// A receiver on `listener` answering in turn with `script` (then 200
    /// forever); records (when, target) of every request.
    async fn receiver(
        listener: tokio::net::TcpListener,
        script: Vec<Answer>,
        seen: Arc<Mutex<Vec<(Instant, String)>>>,
    ) {
        let mut k = 0;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let mut got = Vec::new();
            // The whole request: headers, then Content-Length bytes.
            loop {
                let n = sock.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let body = String::from_utf8_lossy(&got).into_owned();
            let target = body
                .split("\"target\":\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_owned();
            seen.lock().unwrap().push((Instant::now(), target));
            let answer = script.get(k).copied().unwrap_or(Answer::Status(200));
            k += 1;
            match answer {
                Answer::Hang => {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(sock);
                    });
                }
                Answer::Status(code) => {
                    let reply = format!(
                        "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused_timed_out_and_unreachable_alerts_are_retried_with_backoff_in_order() {
        // The port is reserved, but nobody listens yet: connections are
        // refused until the receiver starts.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = std_listener.local_addr().unwrap().port();
        drop(std_listener);
        let alerts = Alerts::start(&[sink(port, 300)]);
        let t0 = Instant::now();
        assert_eq!(alerts.send(alert(1)), 0);
        assert_eq!(alerts.send(alert(2)), 0);
        // Refused at once, then retried 0.8–1 s later: listen meanwhile.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = vec![Answer::Status(500), Answer::Hang, Answer::Status(503)];
        tokio::spawn(receiver(listener, script, seen.clone()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.lock().unwrap().len() < 5 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = seen.lock().unwrap().clone();
        let targets: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
        // Alert 1: refused (not seen), 500, no answer, 503, delivered;
        // then alert 2, delivered at once.
        assert_eq!(targets, ["t1", "t1", "t1", "t1", "t2"], "{seen:?}");
        let at: Vec<f64> = seen
            .iter()
            .map(|(t, _)| t.duration_since(t0).as_secs_f64())
            .collect();
        // Waits: 1 s after the refusal, then 2 s, then 4 s (each up to
        // 20 % shorter), plus the 300 ms timeout of the unanswered try.
        let within = |what: &str, v: f64, lo: f64, hi: f64| {
            assert!(
                (lo..=hi).contains(&v),
                "{what}: {v:.2} s not within {lo}..{hi} ({at:?})"
            );
        };
        within("first try after the refusal", at[0], 0.75, 1.3);
        within("after the 500", at[1] - at[0], 1.55, 2.3);
        within("after the timeout", at[2] - at[1], 0.3 + 3.15, 0.3 + 4.3);
        within("after the 503", at[3] - at[2], 6.3, 8.3);
        within("the next alert", at[4] - at[3], 0.0, 0.3);
    }

    #[tokio::test]
    async fn a_full_queue_drops_new_alerts_and_keeps_the_old() {
        // A receiver that takes connections and never answers: the worker
        // holds alert 0, the queue the next QUEUE.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(receiver(listener, vec![Answer::Hang; 4], seen.clone()));
        let alerts = Alerts::start(&[sink(port, 10_000)]);
        assert_eq!(alerts.send(alert(0)), 0);
        // Until the worker has taken alert 0 out of the queue.
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen.lock().unwrap().len(), 1);
        let dropped: usize = (1..=QUEUE as u32 + 5).map(|n| alerts.send(alert(n))).sum();
        assert_eq!(dropped, 5, "the queue holds {QUEUE} alerts, no more");
    }
}
