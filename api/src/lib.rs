//! The names of nonstopd's control API (docs/dbus.md), in one place for
//! both sides: `nonstopd` serves them, `nonstopctl` calls them, and the
//! typed rows of its properties (`model`). No GStreamer and no D-Bus
//! connection here (only zvariant, its type system), so the client links
//! neither GStreamer nor anything of the daemon.

pub mod drill;
pub mod model;
pub mod objpath;

/// The bus name nonstopd owns.
pub const SERVICE: &str = "org.nonstop.Supervisor1";
/// The manager object.
pub const PATH: &str = "/org/nonstop/Supervisor1";
/// The manager's interface.
pub const MANAGER_IFACE: &str = "org.nonstop.Supervisor1";
/// Every channel object's interface.
pub const CHANNEL_IFACE: &str = "org.nonstop.Supervisor1.Channel";
/// The named errors' common prefix (`<prefix>.NoSuchChannel`, …).
pub const ERROR_PREFIX: &str = "org.nonstop.Supervisor1.Error";

/// The API's timestamps: microseconds since the Unix epoch, now (0 if the
/// system clock is before 1970).
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The named errors of the API, by their last element.
pub const ERRORS: [&str; 7] = [
    "NoSuchChannel",
    "NoSuchInput",
    "NoSuchOutput",
    "InvalidArgument",
    "Busy",
    NO_FLEET,
    "Failed",
];

/// The error of a fleet call to a nonstopd that runs no fleet (its
/// config has no `[fleet]`).
pub const NO_FLEET: &str = "NoFleet";

/// What nonstopd says with [`NO_FLEET`], and what nonstopctl prints.
pub const NO_FLEET_MESSAGE: &str = "this nonstopd runs no fleet";

/// A node name as the fleet writes it into etcd keys (as `[fleet] node`
/// must be): 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_hang_together() {
        assert!(PATH.ends_with(&SERVICE.replace('.', "/")));
        assert!(CHANNEL_IFACE.starts_with(MANAGER_IFACE));
        assert!(ERROR_PREFIX.starts_with(SERVICE));
        assert!(objpath::CHANNEL_PREFIX.starts_with(PATH));
        assert!(ERRORS.contains(&NO_FLEET));
    }

    #[test]
    fn node_names() {
        for ok in ["box-a", "enc_1.dc2", "A", &"x".repeat(64)] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }
}
