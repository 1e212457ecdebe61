//! Waiting for a condition, with a deadline.

use std::time::{Duration, Instant};

/// How long to sleep between two checks.
const POLL: Duration = Duration::from_millis(20);

/// Checks `f` until it is true or `timeout` has passed (one last check at the deadline);
/// whether it became true.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// assert!(gears_testkit::wait_until(Duration::from_secs(1), || { n += 1; n == 3 }));
/// assert!(!gears_testkit::wait_until(Duration::from_millis(30), || false));
/// ```
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    f()
}

/// Like [`wait_until`], panicking with "timed out waiting for `what`" if `f` never holds.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// gears_testkit::eventually(Duration::from_secs(1), "the third call", || { n += 1; n == 3 });
/// assert_eq!(n, 3);
/// ```
pub fn eventually(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(wait_until(timeout, f), "timed out waiting for {what}");
}
