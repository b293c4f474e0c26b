//! Wall-clock time as unix milliseconds, the one unit every expiry computation uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the unix epoch.
// `#[inline]` on the small helpers of the per-request path: they are called from generic
// code compiled in the user's crate, which cannot inline them otherwise.
#[inline]
pub(crate) fn now_millis() -> u64 {
    // A clock before 1970 is a broken host; treating it as the epoch keeps expiry monotone.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, saturating_millis)
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn saturating_millis(duration: Duration) -> u64 {
    // In u64 throughout: `as_millis` would go through u128.
    duration
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(duration.subsec_millis()))
}

/// The `SystemTime` of a unix-millisecond timestamp.
pub(crate) fn to_system_time(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}
