//! When a session ends.

use crate::clock::saturating_millis;
use crate::config::SessionConfig;

/// The timeouts in milliseconds, copied out of the config so the hot path reads integers
/// instead of converting `Duration`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    idle: u64,
    absolute: u64,
    long_term: u64,
}

impl Lifetimes {
    pub(crate) fn from_config(config: &SessionConfig) -> Self {
        Self {
            idle: saturating_millis(config.idle_timeout),
            absolute: saturating_millis(config.absolute_timeout),
            long_term: saturating_millis(config.long_term_timeout),
        }
    }

    /// The instant a session created at `created_at` and last used at `last_access` ends: a
    /// "remember me" session `long_term` after its last use; any other at the earlier of its
    /// idle and absolute timeouts.
    pub(crate) fn expires_at(self, created_at: u64, last_access: u64, long_term: bool) -> u64 {
        if long_term {
            last_access.saturating_add(self.long_term)
        } else {
            last_access
                .saturating_add(self.idle)
                .min(created_at.saturating_add(self.absolute))
        }
    }

    /// How long a session's expiry extends past each use.
    pub(crate) fn sliding(self, long_term: bool) -> u64 {
        if long_term { self.long_term } else { self.idle }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_and_absolute_both_bound_a_session_and_long_term_slides() {
        let lifetimes = Lifetimes::from_config(
            &SessionConfig::default()
                .with_idle_timeout(Duration::from_millis(10))
                .with_absolute_timeout(Duration::from_millis(100))
                .with_long_term_timeout(Duration::from_millis(1000)),
        );
        assert_eq!(lifetimes.expires_at(0, 0, false), 10);
        assert_eq!(lifetimes.expires_at(0, 95, false), 100);
        assert_eq!(lifetimes.expires_at(0, 95, true), 1095);
        assert_eq!(lifetimes.expires_at(u64::MAX, u64::MAX, false), u64::MAX);
    }
}
