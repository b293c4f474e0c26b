//! What a backend announces when a session changes, so other servers drop their stale copies.

use tokio::sync::mpsc;

use crate::backend::StorageKey;

/// A session changed in storage: saved at `version`, or deleted (`version` `None`); or every
/// session was deleted at once (`key` `None`, a [`delete_all`](super::SessionBackend::delete_all)).
/// Carries the storage key (a hash of the id) and the version, never the id or the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The changed session's storage key; `None` when every session went.
    pub key: Option<StorageKey>,
    /// The version now stored; `None` when the session was deleted.
    pub version: Option<u64>,
}

/// The changes other stores made, as a backend delivers them: see
/// [`SessionBackend::changes`](crate::backend::SessionBackend::changes). The feed ends (the
/// sender is dropped) when the backend's connection to its broker is lost; the store then asks
/// for a new one.
pub type ChangeFeed = mpsc::Receiver<Change>;

impl Change {
    /// The change an announcement `<storage key, or * for all> <version, or - for a delete>
    /// <origin>` tells of, as the Redis and PostgreSQL backends spell it; `None` for the backend
    /// instance's own (`own`, its origin tag) and for text that is not an announcement.
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn parse(text: &str, own: Option<&str>) -> Option<Self> {
        let mut parts = text.split(' ');
        let key = match parts.next()? {
            "*" => None,
            key => Some(StorageKey::parse(key)?),
        };
        let version = match parts.next()? {
            "-" => None,
            version => Some(version.parse().ok()?),
        };
        let origin = parts.next()?;
        if parts.next().is_some() || own.is_some_and(|own| own == origin) {
            return None;
        }
        Some(Self { key, version })
    }
}

#[cfg(all(test, any(feature = "redis", feature = "postgres")))]
mod tests {
    use super::*;
    use crate::SessionId;

    #[test]
    fn announcements_parse_and_an_instances_own_are_left_out() {
        let key = StorageKey::for_id(SessionId::generate());
        let saved = format!("{key} 7 a1");
        let expected = Change {
            key: Some(key.clone()),
            version: Some(7),
        };
        assert_eq!(Change::parse(&saved, None), Some(expected.clone()));
        assert_eq!(Change::parse(&saved, Some("b2")), Some(expected));
        assert_eq!(Change::parse(&saved, Some("a1")), None, "its own");
        let deleted = Change::parse(&format!("{key} - "), Some("a1"));
        assert_eq!(deleted.map(|change| change.version), Some(None));
        let cleared = Change::parse("* - a1", Some("b2"));
        assert_eq!(cleared.map(|change| change.key), Some(None));
        for garbage in [
            String::new(),
            format!("{key} 7"),
            format!("{key} -7 a1"),
            format!("{key} 7 a1 extra"),
            "not-a-key 7 a1".to_owned(),
        ] {
            assert_eq!(Change::parse(&garbage, None), None, "{garbage:?}");
        }
    }
}
