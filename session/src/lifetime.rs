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
    /// How much longer than the session a stored record lives: the touch interval with a
    /// backend, 0 without. A stored expiry is extended at most once per touch interval, so a
    /// record kept exactly `idle` past its last touch would end up to a touch interval before
    /// `idle` past the session's last request (see [`stored_expires_at`](Self::stored_expires_at)).
    slack: u64,
}

impl Lifetimes {
    /// The timeouts of `config`, for a store with a backend (`persistent`) or without.
    pub(crate) fn from_config(config: &SessionConfig, persistent: bool) -> Self {
        Self {
            idle: saturating_millis(config.idle_timeout),
            absolute: saturating_millis(config.absolute_timeout),
            long_term: saturating_millis(config.long_term_timeout),
            slack: if persistent {
                saturating_millis(config.touch_interval)
            } else {
                0
            },
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

    /// When a session created at `created_at` is over however active: its absolute timeout
    /// (a "remember me" session has none).
    pub(crate) fn age_limit(self, created_at: u64, long_term: bool) -> u64 {
        if long_term {
            u64::MAX
        } else {
            created_at.saturating_add(self.absolute)
        }
    }

    /// When a session last used at `last_access` is over for want of use.
    pub(crate) fn idle_limit(self, last_access: u64, long_term: bool) -> u64 {
        last_access.saturating_add(self.sliding(long_term))
    }

    /// The expiry a backend record gets when it is written or touched at `now`: the session's
    /// expiry plus the touch interval, never past the absolute timeout. A request that does
    /// not touch comes less than a touch interval after the last touch, so the record outlives
    /// it by at least the idle timeout: requests spaced less than the idle timeout apart keep
    /// the session alive on every server, and a record outlives its last request by at most
    /// the idle timeout plus one touch interval.
    pub(crate) fn stored_expires_at(self, created_at: u64, now: u64, long_term: bool) -> u64 {
        now.saturating_add(self.sliding(long_term))
            .saturating_add(self.slack)
            .min(self.age_limit(created_at, long_term))
    }

    /// When a record that expires at `stored_expires_at` was last written or touched, as far
    /// as it tells (earlier, if the absolute timeout capped it).
    pub(crate) fn stored_touched_at(self, stored_expires_at: u64, long_term: bool) -> u64 {
        stored_expires_at
            .saturating_sub(self.sliding(long_term))
            .saturating_sub(self.slack)
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
            false,
        );
        assert_eq!(lifetimes.expires_at(0, 0, false), 10);
        assert_eq!(lifetimes.expires_at(0, 95, false), 100);
        assert_eq!(lifetimes.expires_at(0, 95, true), 1095);
        assert_eq!(lifetimes.expires_at(u64::MAX, u64::MAX, false), u64::MAX);
    }

    #[test]
    fn stored_records_outlive_the_session_by_one_touch_interval_within_the_absolute_timeout() {
        let lifetimes = Lifetimes::from_config(
            &SessionConfig::default()
                .with_idle_timeout(Duration::from_millis(10))
                .with_absolute_timeout(Duration::from_millis(100))
                .with_long_term_timeout(Duration::from_millis(1000))
                .with_touch_interval(Duration::from_millis(4)),
            true,
        );
        assert_eq!(lifetimes.stored_expires_at(0, 0, false), 14);
        assert_eq!(lifetimes.stored_expires_at(0, 90, false), 100, "capped");
        assert_eq!(lifetimes.stored_expires_at(0, 90, true), 1094);
        assert_eq!(lifetimes.stored_touched_at(14, false), 0);
        assert_eq!(lifetimes.stored_touched_at(1094, true), 90);
    }
}
