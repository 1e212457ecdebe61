//! Replicas hold the registrations but fire only once promoted; registration changes reach
//! them by full sync and as replicated commands.

use std::time::Duration;

use gears_testkit::{run, Server};

use crate::{eventually, registration_id, MODULE};

/// A replica of `master` with the module, and a connection to it once it is in sync.
fn replica_of(master: &Server) -> (Server, redis::Connection) {
    let replica = Server::builder()
        .module(MODULE)
        .replica_of(master)
        .try_start()
        .expect("replica starts");
    let mut r = replica.conn();
    eventually("replica in sync", || {
        run(&mut r, &["INFO", "replication"]).contains("master_link_status:up")
    });
    (replica, r)
}

#[test]
fn replicas_hold_registrations_but_fire_only_once_promoted() {
    let master = Server::start(MODULE, &[]);
    let (mut replica, mut r) = replica_of(&master);
    let mut m = master.conn();
    assert!(
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains("audit_trail"),
        "the replica holds the registrations"
    );

    run(&mut m, &["HSET", "user:1", "name", "ann"]);
    for i in 0..100 {
        run(&mut m, &["SET", &format!("event:{i}"), "x"]);
    }
    eventually("master counted", || {
        run(&mut m, &["GET", "events:seen"]) == "100"
    });
    eventually("replica caught up", || {
        run(&mut r, &["GET", "events:seen"]) == "100"
    });
    std::thread::sleep(Duration::from_millis(300));
    // The replica applied the master's writes (the audit XADD, the INCRs) without firing.
    assert_eq!(run(&mut r, &["XLEN", "audit"]), "1");
    // The natively appended entry reached the replica with the master's id.
    assert_eq!(
        run(&mut r, &["XRANGE", "audit", "-", "+"]),
        run(&mut m, &["XRANGE", "audit", "-", "+"])
    );
    assert_eq!(run(&mut r, &["GET", "events:seen"]), "100");
    let dump = run(&mut r, &["RG.DUMPREGISTRATIONS"]);
    assert!(dump.contains("numTriggered,0"), "{dump}");
    assert!(!dump.contains("numTriggered,1"), "{dump}");

    assert_eq!(run(&mut r, &["REPLICAOF", "NO", "ONE"]), "OK");
    run(&mut r, &["HSET", "user:2", "name", "bob"]);
    assert_eq!(
        run(&mut r, &["XLEN", "audit"]),
        "2",
        "a promoted replica fires"
    );
    assert!(replica.alive());
}

#[test]
fn registration_changes_reach_replicas() {
    let master = Server::start(MODULE, &[]);
    let mut m = master.conn();
    // A change before the replica exists travels with the full sync (RDB aux field)...
    let hello = registration_id(&mut m, "hello");
    run(&mut m, &["RG.PAUSEREGISTRATIONS", &hello]);
    let (_replica, mut r) = replica_of(&master);
    eventually("paused on the replica", || {
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains("status,PAUSED")
    });
    // ... and later changes are replicated as commands, with the same ids.
    let copy = run(&mut m, &["RG.REGISTER", "copy_writes", "ARGS", "order:*"]);
    eventually("registered on the replica", || {
        run(&mut r, &["RG.DUMPREGISTRATIONS"]).contains(&format!("[id,{copy},"))
    });
    assert_eq!(
        run(&mut r, &["RG.REGISTER", "copy_writes", "ARGS", "x:*"]),
        "ERR(You can't write against a read only replica.)",
        "clients cannot change a replica's registrations"
    );
}
