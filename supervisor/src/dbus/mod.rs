//! D-Bus control and state: `org.nonstop.Supervisor1`, modelled on
//! systemd's manager API. One manager object (`manager`), one object per
//! channel (`channel`); properties read the channel's published snapshot
//! (no round trip to the channel for a read), methods become commands to
//! the channel's task, changes go out as `PropertiesChanged` and typed
//! signals. With `[fleet]` the manager shows the fleet (members, drains)
//! and each channel its seat in it (role, leader, fencing token).

use zbus::zvariant::OwnedObjectPath;
use zbus::DBusError;

use crate::channel::CtlError;

mod channel;
pub mod logcontrol;
mod manager;

pub use channel::{forward, ChannelObject};
pub use manager::{announce_reload, watch_fleet, Manager, ManagerRequest, Reloaded};
pub use nonstop_api::{CHANNEL_IFACE, PATH, SERVICE};

/// The named errors of the API.
#[derive(Debug, DBusError)]
#[zbus(prefix = "org.nonstop.Supervisor1.Error")]
pub enum Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchChannel(String),
    NoSuchInput(String),
    NoSuchOutput(String),
    InvalidArgument(String),
    Busy(String),
    /// A fleet call to a nonstopd whose config has no `[fleet]`.
    NoFleet(String),
    /// The operation could not be carried out (etcd refused it or did not
    /// answer); the message says why.
    Failed(String),
}

impl From<CtlError> for Error {
    fn from(e: CtlError) -> Self {
        match e {
            CtlError::NoSuchInput(m) => Error::NoSuchInput(m),
            CtlError::NoSuchOutput(m) => Error::NoSuchOutput(m),
            CtlError::InvalidArgument(m) => Error::InvalidArgument(m),
            CtlError::Busy(m) => Error::Busy(m),
        }
    }
}

/// Ids to path elements and back (the latter for clients).
pub use nonstop_api::objpath::{channel_id, escape, CHANNEL_PREFIX};

pub fn channel_path(id: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(nonstop_api::objpath::channel_path(id))
        .expect("escaped ids make valid object paths")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_valid_path_elements() {
        assert_eq!(escape("news"), "news");
        assert_eq!(escape("news-hd_2"), "news_2dhd_5f2");
        assert_eq!(
            channel_path("a-b").as_str(),
            "/org/nonstop/Supervisor1/channel/a_2db"
        );
        assert_eq!(
            channel_path("1tv").as_str(),
            "/org/nonstop/Supervisor1/channel/_31tv"
        );
    }

    #[test]
    fn error_names_are_the_shared_ones() {
        // zbus's derive needs the prefix as a literal: checked here.
        use zbus::DBusError as _;
        let errors = [
            Error::NoSuchChannel(String::new()),
            Error::NoSuchInput(String::new()),
            Error::NoSuchOutput(String::new()),
            Error::InvalidArgument(String::new()),
            Error::Busy(String::new()),
            Error::NoFleet(String::new()),
            Error::Failed(String::new()),
        ];
        assert_eq!(errors.len(), nonstop_api::ERRORS.len());
        for (e, short) in errors.iter().zip(nonstop_api::ERRORS) {
            assert_eq!(
                e.name().as_str(),
                format!("{}.{short}", nonstop_api::ERROR_PREFIX)
            );
        }
    }
}
