//! Failures and their exit codes: what a D-Bus error or a missing answer
//! means for the caller.

use std::time::Duration;

use nonstop_api::{ERROR_PREFIX, SERVICE};
use zbus::DBusError;

use crate::cli::Bus;
use crate::{EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE};

#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

impl Fail {
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        Fail {
            code,
            msg: msg.into(),
        }
    }
}

/// Where the client looks for nonstopd.
pub fn not_running(bus: &Bus) -> Fail {
    Fail::new(
        EXIT_UNREACHABLE,
        format!("nonstopd is not running: nobody owns {SERVICE} on {bus}"),
    )
}

/// A D-Bus error reply by name: the daemon's own errors and refusals are
/// exit 4 with the short name; a missing service is exit 3.
pub fn named_error(name: &str, text: &str, bus: &Bus) -> Fail {
    let short = name
        .strip_prefix(ERROR_PREFIX)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or_else(|| name.rsplit('.').next().unwrap_or(name));
    match name {
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner"
        | "org.freedesktop.DBus.Error.NoServer"
        | "org.freedesktop.DBus.Error.Disconnected" => not_running(bus),
        "org.freedesktop.DBus.Error.NoReply"
        | "org.freedesktop.DBus.Error.Timeout"
        | "org.freedesktop.DBus.Error.TimedOut" => Fail::new(
            EXIT_UNREACHABLE,
            format!("nonstopd did not answer: {short}: {text}"),
        ),
        _ => Fail::new(EXIT_REFUSED, format!("{short}: {text}")),
    }
}

pub fn from_zbus(e: &zbus::Error, bus: &Bus) -> Fail {
    match e {
        zbus::Error::MethodError(name, text, _) => {
            named_error(name.as_str(), text.as_deref().unwrap_or(""), bus)
        }
        zbus::Error::FDO(f) => match f.as_ref() {
            zbus::fdo::Error::ZBus(inner) => from_zbus(inner, bus),
            f => named_error(f.name().as_str(), f.description().unwrap_or(""), bus),
        },
        zbus::Error::InputOutput(_) | zbus::Error::Address(_) | zbus::Error::Handshake(_) => {
            Fail::new(EXIT_UNREACHABLE, format!("lost {bus}: {e}"))
        }
        other => Fail::new(
            EXIT_FAILED,
            format!("unexpected answer from nonstopd: {other}"),
        ),
    }
}

/// Runs one D-Bus round trip (or several) with a deadline.
pub async fn bounded<T>(
    bus: &Bus,
    limit: Duration,
    fut: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, Fail> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(from_zbus(&e, bus)),
        Err(_) => Err(Fail::new(
            EXIT_UNREACHABLE,
            format!(
                "nonstopd did not answer within {} on {bus}",
                humantime::format_duration(limit)
            ),
        )),
    }
}
