//! The API, as zbus proxies: the manager and a channel object
//! (docs/dbus.md).

use std::collections::HashMap;

use nonstop_api::model::{EncoderRow, InputRow, LinkRow, MemberRow, OutputRow};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

#[zbus::proxy(
    interface = "org.nonstop.Supervisor1",
    default_service = "org.nonstop.Supervisor1",
    default_path = "/org/nonstop/Supervisor1"
)]
pub trait Manager {
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn started_at(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn channels(&self) -> zbus::Result<Vec<OwnedObjectPath>>;
    #[zbus(property)]
    fn node_name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn etcd_reachable(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn fleet_members(&self) -> zbus::Result<Vec<MemberRow>>;
    fn get_channel(&self, id: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload(&self) -> zbus::Result<()>;
    fn drain(&self, node: &str) -> zbus::Result<()>;
    fn undrain(&self, node: &str) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.nonstop.Supervisor1.Channel",
    default_service = "org.nonstop.Supervisor1"
)]
pub trait Channel {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn mode(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_input(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn inputs(&self) -> zbus::Result<Vec<InputRow>>;
    #[zbus(property)]
    fn outputs(&self) -> zbus::Result<Vec<OutputRow>>;
    #[zbus(property)]
    fn encoders(&self) -> zbus::Result<Vec<EncoderRow>>;
    #[zbus(property)]
    fn links(&self) -> zbus::Result<Vec<LinkRow>>;
    #[zbus(property)]
    fn switches(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn role(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn leader(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn fencing_token(&self) -> zbus::Result<i64>;
    fn switch_to(&self, input: &str) -> zbus::Result<()>;
    fn set_mode(&self, mode: &str) -> zbus::Result<()>;
    fn restart_input(&self, id: &str) -> zbus::Result<()>;
    fn restart_output(&self, id: &str) -> zbus::Result<()>;
    fn start(&self) -> zbus::Result<()>;
    fn stop(&self) -> zbus::Result<()>;
    fn drill(
        &self,
        kind: &str,
        target: &str,
        duration_ms: u64,
    ) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn insert_cue(&self, kind: &str, duration_ms: u64, preroll_ms: u64) -> zbus::Result<u32>;
    fn schedule_cue(&self, kind: &str, duration_ms: u64, utc: &str) -> zbus::Result<u32>;
}
