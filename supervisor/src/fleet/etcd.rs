//! The agent's calls to etcd: connecting (auth, TLS), the lease (granted,
//! then renewed every TTL/3 with one renewal in flight; the deadline runs
//! from each confirmed renewal's send time), this box's member key, one
//! read of the whole prefix per tick, and the epoch delays.

use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, PutOptions, TlsOptions, Txn, TxnOp,
};
use tracing::{info, warn};

use super::agent::{Agent, Session};
use super::state::{self, Kv, MemberRecord};
use crate::channel::Role;
use crate::output::boottime_ns;

impl Agent {
    pub(super) async fn connect(&mut self) -> Option<Client> {
        if let Some(c) = &self.client {
            return Some(c.clone());
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.budget())
            .with_keep_alive(Duration::from_secs(1), self.budget());
        if let (Some(u), Some(p)) = (&self.cfg.username, &self.cfg.password) {
            opts = opts.with_user(u.clone(), p.clone());
        }
        if let Some(ca) = &self.cfg.ca {
            let mut tls = TlsOptions::new();
            match std::fs::read(ca.get_ref()) {
                Ok(pem) => tls = tls.ca_certificate(Certificate::from_pem(pem)),
                Err(e) => {
                    self.complain(&format!("cannot read {}", ca.get_ref()), e);
                    return None;
                }
            }
            if let (Some(c), Some(k)) = (&self.cfg.cert, &self.cfg.key) {
                match (std::fs::read(c.get_ref()), std::fs::read(k.get_ref())) {
                    (Ok(c), Ok(k)) => tls = tls.identity(Identity::from_pem(c, k)),
                    (Err(e), _) | (_, Err(e)) => {
                        self.complain("cannot read the client certificate or key", e);
                        return None;
                    }
                }
            }
            opts = opts.with_tls(tls);
        }
        let endpoints: Vec<String> = self
            .cfg
            .endpoints
            .iter()
            .map(|e| e.get_ref().clone())
            .collect();
        match tokio::time::timeout(self.budget() * 3, Client::connect(endpoints, Some(opts))).await
        {
            Ok(Ok(c)) => {
                self.client = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.complain("cannot connect to etcd", e);
                None
            }
            Err(_) => {
                self.complain("cannot connect to etcd", "timed out");
                None
            }
        }
    }

    /// Grants the lease (a new session) or renews it when due.
    pub(super) async fn keep_lease(&mut self, client: &mut Client) {
        let budget = self.budget();
        let Some(s) = self.session.as_mut() else {
            let sent = boottime_ns();
            let ttl = self.cfg.ttl.as_secs() as i64;
            match tokio::time::timeout(budget, client.lease_grant(ttl, None)).await {
                Ok(Ok(g)) => {
                    if g.ttl() != ttl {
                        warn!(node = %self.node, asked = ttl, granted = g.ttl(), "fleet: etcd granted another lease TTL than asked (its minimum is 1.5 × its election timeout; see docs/fleet.md)");
                    }
                    info!(node = %self.node, lease = g.id(), ttl = g.ttl(), "fleet: lease granted");
                    self.session = Some(Session {
                        lease: g.id(),
                        ttl: Duration::from_secs(g.ttl().max(1) as u64),
                        keeper: None,
                        confirmed_ns: sent,
                        next_renew: Instant::now() + Duration::from_secs(g.ttl().max(1) as u64) / 3,
                    });
                    self.member_dirty = true;
                }
                Ok(Err(e)) => self.complain("cannot get a lease", e),
                Err(_) => self.complain("cannot get a lease", "timed out"),
            }
            return;
        };
        if Instant::now() < s.next_renew {
            return;
        }
        let sent = boottime_ns();
        let answer = match s.keeper.as_mut() {
            // lease_keep_alive renews once and reads that answer itself.
            None => tokio::time::timeout(budget, client.lease_keep_alive(s.lease))
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|(k, st)| {
                    s.keeper = Some((k, st));
                    Some(s.ttl.as_secs() as i64)
                }),
            Some((keeper, stream)) => {
                let call = async {
                    keeper.keep_alive().await?;
                    stream.message().await
                };
                match tokio::time::timeout(budget, call).await {
                    Ok(Ok(Some(r))) => Ok(Some(r.ttl())),
                    Ok(Ok(None)) => Err("the keepalive stream ended".to_owned()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            }
        };
        match answer {
            Ok(Some(ttl)) if ttl > 0 => {
                s.confirmed_ns = sent;
                s.ttl = Duration::from_secs(ttl as u64);
                s.next_renew = Instant::now() + s.ttl / 3;
                self.etcd_ok = true;
            }
            Ok(_) => {
                warn!(node = %self.node, lease = s.lease, "fleet: the lease expired; every channel this box led is held");
                self.session = None;
                self.lose_all("lease expired");
            }
            Err(e) => {
                // Try again at the next tick, on a fresh stream.
                s.keeper = None;
                self.complain("cannot renew the lease", e);
            }
        }
    }

    pub(super) async fn publish_member(&mut self, client: &mut Client) {
        let Some(s) = &self.session else { return };
        if !self.member_dirty {
            return;
        }
        let record = MemberRecord {
            capacity: self.cfg.capacity,
            peer: self.cfg.peer.as_ref().map(|p| p.get_ref().clone()),
            channels: self
                .channels
                .iter()
                .map(|(id, e)| (id.clone(), e.seat.hash.clone()))
                .collect(),
            started_us: self.started_us,
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        let key = state::member_key(&self.prefix, &self.node);
        let opts = PutOptions::new().with_lease(s.lease);
        match tokio::time::timeout(self.budget(), client.put(key, value, Some(opts))).await {
            Ok(Ok(_)) => self.member_dirty = false,
            Ok(Err(e)) => self.complain("cannot publish this box", e),
            Err(_) => self.complain("cannot publish this box", "timed out"),
        }
    }

    pub(super) async fn read(&mut self, client: &mut Client) -> bool {
        let opts = GetOptions::new().with_prefix();
        let key = format!("{}/", self.prefix);
        match tokio::time::timeout(self.budget(), client.get(key, Some(opts))).await {
            Ok(Ok(r)) => {
                let kvs = r.kvs().iter().filter_map(|kv| {
                    Some(Kv {
                        key: kv.key_str().ok()?,
                        value: kv.value(),
                        create_revision: kv.create_revision(),
                        lease: kv.lease(),
                    })
                });
                self.obs = state::observe(&self.prefix, kvs);
                self.etcd_ok = true;
                true
            }
            Ok(Err(e)) => {
                self.complain("cannot read the fleet", e);
                false
            }
            Err(_) => {
                self.complain("cannot read the fleet", "timed out");
                false
            }
        }
    }

    /// Once a second: each channel's output delay against UTC, for the
    /// other boxes to compare theirs with (µs, under the lease).
    pub(super) async fn publish_epochs(&mut self, client: &mut Client) {
        if self
            .epoch_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.epoch_at = Some(Instant::now());
        let Some(lease) = self.session.as_ref().map(|s| s.lease) else {
            return;
        };
        let mut ops = Vec::new();
        for (id, e) in &self.channels {
            let delay = e
                .seat
                .epoch_delay
                .load(std::sync::atomic::Ordering::Relaxed);
            if delay != 0 && e.sent.as_ref().is_some_and(|s| s.role != Role::Off) {
                let key = state::epoch_key(&self.prefix, id, &self.node);
                ops.push(TxnOp::put(
                    key,
                    (delay / 1000).to_string(),
                    Some(PutOptions::new().with_lease(lease)),
                ));
            }
        }
        if ops.is_empty() {
            return;
        }
        let txn = Txn::new().and_then(ops);
        if let Ok(Err(e)) = tokio::time::timeout(self.budget(), client.txn(txn)).await {
            self.complain("cannot publish the epoch delays", e);
        }
    }
}
