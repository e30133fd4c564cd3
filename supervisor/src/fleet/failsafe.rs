//! The failsafe that keeps a leader on air through an etcd outage, as
//! Patroni's does: while it cannot renew its lease, the leader asks each
//! of a channel's other replicas, directly, to confirm that it does not
//! hold the channel. A replica that confirms promises not to take the
//! channel for one TTL from then; the leader, having every confirmation
//! of a round, may send until the round's send time plus the TTL. Since
//! each promise outlasts the deadline it grants, nobody takes the channel
//! while the leader may still send. A leader cut from etcd *and* from its
//! peers gets no confirmation and stops at its lease's deadline.
//!
//! `POST /fleet/v1/failsafe` `{"node":"a","channels":["news"],"ttl_ms":2000}`
//! → `{"node":"b","confirmed":["news"]}`

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ask {
    pub node: String,
    pub channels: Vec<String>,
    pub ttl_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    pub node: String,
    /// The channels it confirms it neither holds nor is taking.
    pub confirmed: Vec<String>,
}

/// What the peer server and the agent share: the channels this box leads
/// or is taking, and the promises it made.
#[derive(Debug, Default)]
pub struct Peers {
    node: String,
    /// Leading, or taking right now (the txn is in flight).
    busy: BTreeSet<String>,
    /// Channel → (the leader it promised, until when).
    promised: BTreeMap<String, (String, Instant)>,
}

pub type Shared = Arc<Mutex<Peers>>;

pub fn shared(node: &str) -> Shared {
    Arc::new(Mutex::new(Peers {
        node: node.to_owned(),
        ..Peers::default()
    }))
}

impl Peers {
    /// Answers a leader's ask: confirms each channel it is not busy with,
    /// and promises not to take it for `ttl_ms` from now.
    pub fn answer(&mut self, ask: &Ask, now: Instant) -> Answer {
        let ttl = Duration::from_millis(ask.ttl_ms.min(60_000));
        let mut confirmed = Vec::new();
        for ch in &ask.channels {
            if self.busy.contains(ch) {
                continue;
            }
            let until = now + ttl;
            let e = self
                .promised
                .entry(ch.clone())
                .or_insert((ask.node.clone(), until));
            if e.1 < until || e.0 != ask.node {
                *e = (ask.node.clone(), until.max(e.1));
            }
            confirmed.push(ch.clone());
        }
        Answer {
            node: self.node.clone(),
            confirmed,
        }
    }

    /// Before taking `channel`: refused while a promise to another node
    /// is in force; otherwise marked busy, so no promise is made while
    /// the take is in flight.
    pub fn begin_take(&mut self, channel: &str, now: Instant) -> Result<(), String> {
        if let Some((node, until)) = self.promised.get(channel) {
            if *until > now && *node != self.node {
                return Err(node.clone());
            }
        }
        self.busy.insert(channel.to_owned());
        Ok(())
    }

    /// Whether `channel` is led (or being taken) here.
    pub fn set_busy(&mut self, channel: &str, busy: bool) {
        if busy {
            self.busy.insert(channel.to_owned());
        } else {
            self.busy.remove(channel);
        }
    }

    /// The promise in force for `channel`, if any.
    pub fn promise(&self, channel: &str, now: Instant) -> Option<(String, Duration)> {
        self.promised
            .get(channel)
            .filter(|(_, until)| *until > now)
            .map(|(n, until)| (n.clone(), *until - now))
    }
}

/// Serves the peers' asks on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, peers: Shared) {
    let app = Router::new()
        .route("/fleet/v1/failsafe", post(ask))
        .with_state(peers);
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            info!(addr = %addr, "fleet: answering peers");
            if let Err(e) = axum::serve(listener, app).await {
                warn!(addr = %addr, "fleet: peer server stopped: {e}");
            }
        }
        Err(e) => {
            warn!(addr = %addr, "fleet: cannot listen for peers ({e}); an etcd outage will fence this box's leaders")
        }
    }
}

async fn ask(State(peers): State<Shared>, body: String) -> (axum::http::StatusCode, String) {
    let Ok(ask) = serde_json::from_str::<Ask>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad request\n".into());
    };
    let answer = peers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .answer(&ask, Instant::now());
    (
        axum::http::StatusCode::OK,
        serde_json::to_string(&answer).unwrap_or_default(),
    )
}

/// Asks every peer at once; each answer, by peer address (missing: no
/// answer in time).
pub async fn round(
    client: &reqwest::Client,
    asks: BTreeMap<String, Ask>,
    budget: Duration,
) -> BTreeMap<String, Answer> {
    let mut tasks = Vec::new();
    for (addr, ask) in asks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("http://{addr}/fleet/v1/failsafe"))
                .timeout(budget)
                .body(serde_json::to_string(&ask).unwrap_or_default())
                .send()
                .await
                .ok()?;
            let text = r.text().await.ok()?;
            Some((addr, serde_json::from_str::<Answer>(&text).ok()?))
        }));
    }
    let mut out = BTreeMap::new();
    for t in tasks {
        if let Ok(Some((addr, a))) = t.await {
            out.insert(addr, a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(node: &str, ch: &[&str]) -> Ask {
        Ask {
            node: node.into(),
            channels: ch.iter().map(|c| c.to_string()).collect(),
            ttl_ms: 2000,
        }
    }

    #[test]
    fn a_confirmation_is_a_promise_not_to_take_for_one_ttl() {
        let p = shared("b");
        let t0 = Instant::now();
        let mut p = p.lock().unwrap();
        let a = p.answer(&ask("a", &["news", "sport"]), t0);
        assert_eq!(a.confirmed, ["news", "sport"]);
        assert_eq!(
            p.begin_take("news", t0 + Duration::from_millis(1999)),
            Err("a".into())
        );
        assert!(p
            .begin_take("news", t0 + Duration::from_millis(2000))
            .is_ok());
    }

    #[test]
    fn a_channel_led_or_being_taken_is_never_confirmed() {
        let p = shared("b");
        let t0 = Instant::now();
        let mut p = p.lock().unwrap();
        p.begin_take("news", t0).unwrap();
        let a = p.answer(&ask("a", &["news", "sport"]), t0);
        assert_eq!(a.confirmed, ["sport"]);
        p.set_busy("news", false);
        assert_eq!(p.answer(&ask("a", &["news"]), t0).confirmed, ["news"]);
    }

    #[test]
    fn a_later_ask_extends_the_promise_and_an_earlier_never_shortens_it() {
        let p = shared("b");
        let t0 = Instant::now();
        let mut p = p.lock().unwrap();
        p.answer(&ask("a", &["news"]), t0 + Duration::from_millis(500));
        p.answer(&ask("a", &["news"]), t0);
        let (node, left) = p.promise("news", t0).unwrap();
        assert_eq!(node, "a");
        assert_eq!(left, Duration::from_millis(2500));
    }
}
