//! org.freedesktop.LogControl1, as systemd services have it: so that
//! `systemctl service-log-level nonstopd debug` changes nonstopd's log
//! level (and GStreamer's debug threshold) while every channel stays on
//! air. Served at /org/freedesktop/LogControl1 on nonstopd's bus name
//! (the unit's `BusName=`). Setting is for root and operators (the bus
//! policy's Properties.Set rule).

use zbus::fdo;

pub const PATH: &str = "/org/freedesktop/LogControl1";

pub struct LogControl;

#[zbus::interface(name = "org.freedesktop.LogControl1")]
impl LogControl {
    /// syslog's level names: emerg, alert, crit, err, warning, notice,
    /// info, debug.
    #[zbus(property)]
    fn log_level(&self) -> String {
        crate::logs::level()
    }

    #[zbus(property)]
    fn set_log_level(&mut self, level: String) -> fdo::Result<()> {
        crate::logs::set_level(&level).map_err(fdo::Error::InvalidArgs)
    }

    /// `journal` (native records) or `console` (stderr).
    #[zbus(property)]
    fn log_target(&self) -> String {
        crate::logs::target().to_owned()
    }

    /// The target is chosen at start (`--log-format`, `JOURNAL_STREAM`);
    /// only the one in use (or `auto`) is accepted.
    #[zbus(property)]
    fn set_log_target(&mut self, target: String) -> fdo::Result<()> {
        if target == crate::logs::target() || target == "auto" {
            Ok(())
        } else {
            Err(fdo::Error::NotSupported(format!(
                "nonstopd logs to {} (chosen at start by --log-format and JOURNAL_STREAM); it cannot switch to \"{target}\" while running",
                crate::logs::target()
            )))
        }
    }

    #[zbus(property)]
    fn syslog_identifier(&self) -> String {
        "nonstopd".to_owned()
    }
}
