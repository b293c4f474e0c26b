//! When a session ends.

use crate::clock::saturating_millis;
use crate::config::SessionConfig;

/// The idle and absolute timeouts in milliseconds, copied out of the config so the hot path
/// reads two integers instead of converting `Duration`s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    idle: u64,
    absolute: u64,
}

impl Lifetimes {
    pub(crate) fn from_config(config: &SessionConfig) -> Self {
        Self {
            idle: saturating_millis(config.idle_timeout),
            absolute: saturating_millis(config.absolute_timeout),
        }
    }

    /// The instant a session created at `created_at` and last used at `last_access` ends.
    pub(crate) fn expires_at(self, created_at: u64, last_access: u64) -> u64 {
        last_access
            .saturating_add(self.idle)
            .min(created_at.saturating_add(self.absolute))
    }

    /// Whether that session has ended at `now`.
    pub(crate) fn is_expired(self, created_at: u64, last_access: u64, now: u64) -> bool {
        now >= self.expires_at(created_at, last_access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn idle_and_absolute_both_bound_the_session() {
        let lifetimes = Lifetimes::from_config(
            &SessionConfig::default()
                .with_idle_timeout(Duration::from_millis(10))
                .with_absolute_timeout(Duration::from_millis(100)),
        );
        assert!(!lifetimes.is_expired(0, 0, 9));
        assert!(lifetimes.is_expired(0, 0, 10));
        assert!(!lifetimes.is_expired(0, 95, 99));
        assert!(lifetimes.is_expired(0, 95, 100));
        assert_eq!(lifetimes.expires_at(u64::MAX, u64::MAX), u64::MAX);
    }
}
