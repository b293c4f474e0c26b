//! Wall-clock time as unix milliseconds, the one unit every expiry computation uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch.
pub(crate) fn now_millis() -> u64 {
    // A clock before 1970 is a broken host; treating it as the epoch keeps expiry monotone.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, saturating_millis)
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn saturating_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The `SystemTime` of a unix-millisecond timestamp.
pub(crate) fn to_system_time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}
