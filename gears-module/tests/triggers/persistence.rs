//! Registration changes (ARGS registrations, pauses, unregistrations) survive `DEBUG RELOAD`,
//! an RDB restart and an AOF restart.

use gears_testkit::{run, Server};

use crate::{eventually, registration_id, MODULE};

/// Registers `copy_writes` with ARGS, pauses `hello`, unregisters `count_events`.
fn change_registrations(con: &mut redis::Connection) -> String {
    let copy = run(con, &["RG.REGISTER", "copy_writes", "ARGS", "order:*"]);
    let hello = registration_id(con, "hello");
    let counter = registration_id(con, "count_events");
    assert_eq!(run(con, &["RG.PAUSEREGISTRATIONS", &hello]), "OK");
    assert_eq!(run(con, &["RG.UNREGISTER", &counter]), "OK");
    copy
}

/// Each registration's id, function and status (statistics are not persisted, as in 1.x).
fn summary(dump: &str) -> Vec<String> {
    dump.split("[id,")
        .skip(1)
        .map(|r| {
            let id = r.split(',').next().unwrap_or("");
            let field = |name: &str| {
                r.split(&format!("{name},"))
                    .nth(1)
                    .and_then(|x| x.split([',', ']']).next())
                    .unwrap_or("")
                    .to_string()
            };
            format!("{id} {} {}", field("PD"), field("status"))
        })
        .collect()
}

/// The changes survived: same ids, still working, paused and unregistered as before.
fn assert_changes_kept(con: &mut redis::Connection, copy: &str, before: &str) {
    assert_eq!(
        summary(&run(con, &["RG.DUMPREGISTRATIONS"])),
        summary(before)
    );
    assert!(run(con, &["RG.DUMPREGISTRATIONS"]).contains(&format!("[id,{copy},reader,KeysReader")));
    assert!(run(con, &["RG.TRIGGER", "hello", "x"]).contains("is paused"));
    run(con, &["SET", "event:1", "x"]);
    run(con, &["SET", "order:9", "x"]);
    eventually("the ARGS registration still copies", || {
        run(con, &["LRANGE", "copies:order:*", "0", "-1"]).contains("order:9")
    });
    assert_eq!(
        run(con, &["GET", "events:seen"]),
        "nil",
        "count_events stays unregistered"
    );
}

#[test]
fn registration_changes_survive_debug_reload_and_restart() {
    let mut server = Server::start(MODULE, &[]);
    let mut con = server.conn();
    let copy = change_registrations(&mut con);
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    assert_eq!(run(&mut con, &["DEBUG", "RELOAD"]), "OK");
    assert_changes_kept(&mut con, &copy, &before);

    run(&mut con, &["DEL", "copies:order:*"]);
    assert_eq!(run(&mut con, &["SAVE"]), "OK");
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    server.restart();
    let mut con = server.conn();
    assert_changes_kept(&mut con, &copy, &before);
}

#[test]
fn registration_changes_survive_an_aof_restart() {
    let mut server = Server::builder().module(MODULE).aof().start();
    let mut con = server.conn();
    let copy = change_registrations(&mut con);
    let before = run(&mut con, &["RG.DUMPREGISTRATIONS"]);
    server.restart();
    let mut con = server.conn();
    assert_changes_kept(&mut con, &copy, &before);
}
