//! Registrations inside a real redis-server: keyspace triggers in `sync` and `async_local`
//! mode, event filters, `RG.TRIGGER`, registration commands and statistics, 10k events with
//! no loss, and a replica that never fires until promoted.

mod commands;
mod keyspace;
mod persistence;
mod replicas;
mod streams;

use std::time::Duration;

use gears_testkit::run;

const MODULE: &str = "gears_triggers";

/// Waits up to 20 s for `check`, panicking with `what`.
fn eventually(what: &str, check: impl FnMut() -> bool) {
    gears_testkit::eventually(Duration::from_secs(20), what, check);
}

fn registration_id(con: &mut redis::Connection, function: &str) -> String {
    let dump = run(con, &["RG.DUMPREGISTRATIONS"]);
    let at = dump
        .find(&format!("PD,{function},"))
        .expect("registration listed");
    let start = dump[..at].rfind("[id,").expect("id") + 4;
    dump[start..].split(',').next().expect("id").to_string()
}
