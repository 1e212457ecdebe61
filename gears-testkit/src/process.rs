//! Child processes the kit starts: each is stopped by its own PID, never by name.

use std::process::{Child, Command};

/// Sends `signal` (a name such as `TERM` or `INT`) to `child` by its PID, then reaps it.
pub(crate) fn signal_and_wait(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

/// SIGKILL to `child` (its PID), then reaps it.
pub(crate) fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
