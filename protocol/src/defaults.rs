//! Domain defaults, defined once: the command line, the demo, the test
//! fixtures and the simulator take them from here.

use crate::time::{DAY_MS, Timestamp};

/// Publication period of a listing when the operator names none.
pub const PUBLISH_PERIOD_MS: u64 = 365 * DAY_MS;
/// Sharing period of a listing when the operator names none.
pub const SHARE_PERIOD_MS: u64 = 3 * 365 * DAY_MS;
/// Earliest credit repair after a listing takes effect, when none is named.
pub const REPAIR_AFTER_MS: u64 = 90 * DAY_MS;
/// Added to the federation's minimum objection window for a default
/// deadline: the notice is signed a moment after the deadline is computed
/// (by a running node, perhaps), and the margin keeps the deadline at or
/// past the minimum, in the subject's favour.
pub const RESPOND_BY_MARGIN_MS: u64 = 60_000;

/// A listing's default end of publication, end of sharing and earliest
/// repair, from when it takes effect.
pub fn listing_windows(effective_at: Timestamp) -> (Timestamp, Timestamp, Timestamp) {
    (
        effective_at.plus_ms(PUBLISH_PERIOD_MS),
        effective_at.plus_ms(SHARE_PERIOD_MS),
        effective_at.plus_ms(REPAIR_AFTER_MS),
    )
}

/// The default deadline of an objection filed at `now` under a federation
/// whose minimum response window is `window_ms`.
pub fn respond_by(now: Timestamp, window_ms: u64) -> Timestamp {
    now.plus_ms(window_ms.saturating_add(RESPOND_BY_MARGIN_MS))
}
