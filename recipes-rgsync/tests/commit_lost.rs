//! The reply of a batch's `COMMIT` is lost: a proxy between the writer and the database
//! forwards the `COMMIT`, swallows the answer and closes the connection. The database
//! committed; the writer cannot know. Exactly-once means it resolves the outcome from the
//! database (the checkpoint) before writing again: the batch is not applied a second time, so
//! a change made directly in the database between the loss and the retry survives.
//!
//! MariaDB and PostgreSQL, the shared servers of `scripts/db.sh`, each behind its own proxy.
//! (SQLite runs inside redis-server: there is no connection whose reply could be lost.)

use std::time::Duration;

use gears_testkit::db::{self, exec, rows, unique, MARIADB, POSTGRES};
use gears_testkit::proxy::CommitLossProxy;
use gears_testkit::rgsync::{self, drained, status, Job};

#[test]
fn mariadb_lost_commit_reply_applies_the_batch_once() {
    lost_commit_reply(MARIADB, 3306, "`");
}

#[test]
fn postgres_lost_commit_reply_applies_the_batch_once() {
    lost_commit_reply(POSTGRES, 5432, "\"");
}

fn lost_commit_reply(direct: &str, port: u16, quote: &str) {
    db::connect(direct); // starts the shared server if it does not answer yet
    let proxy = CommitLossProxy::start(port);
    let via_proxy = direct.replace(&format!("Port={port};"), &format!("Port={};", proxy.port));
    let table = unique("commit_lost");
    let q = |s: &str| format!("{quote}{s}{quote}");
    exec(direct, &format!("DROP TABLE IF EXISTS {}", q(&table)));
    let server = rgsync::server().name(&table).start();
    let mut con = server.conn();
    people_job(&table, &via_proxy).add(&mut con);
    write_people(&mut con, "v1");
    drained(&mut con, "people", Duration::from_secs(30));

    // The next batch's COMMIT reaches the database; its reply does not reach the writer.
    proxy.arm();
    write_people(&mut con, "v2");
    assert!(
        proxy.wait_lost(Duration::from_secs(30)),
        "no COMMIT went through the proxy"
    );
    let select = format!(
        "SELECT {}, {} FROM {} ORDER BY {}",
        q("id"),
        q("name"),
        q(&table),
        q("id")
    );
    let committed = rows(direct, &select);
    assert!(
        committed.iter().all(|r| r[1].starts_with("v2-")),
        "the COMMIT whose reply was lost was applied: {committed:?}"
    );
    // Someone changes a row directly before the writer gets its connection back.
    exec(
        direct,
        &format!(
            "UPDATE {} SET {} = 'direct' WHERE {} = 7",
            q(&table),
            q("name"),
            q("id")
        ),
    );
    proxy.release();
    drained(&mut con, "people", Duration::from_secs(30));

    let mut got = rows(direct, &select);
    got.sort_by_key(|r| r[0].parse::<u64>().unwrap_or(u64::MAX));
    let want: Vec<Vec<String>> = (0..50)
        .map(|i| {
            let name = if i == 7 {
                "direct".to_string()
            } else {
                format!("v2-{i}")
            };
            vec![i.to_string(), name]
        })
        .collect();
    assert_eq!(got, want, "the batch was applied a second time");
    let st = status(&mut con, "people");
    assert_eq!(st["dead_letters"], "0", "{st:?}");
    exec(direct, &format!("DROP TABLE {}", q(&table)));
    exec(direct, &format!("DROP TABLE {}", q(&format!("{table}_cp"))));
}

/// The connection hangs instead: the client loses it before its `COMMIT` reaches MariaDB, and
/// the server keeps the transaction open (its locks held) until the `COMMIT` arrives late,
/// after the writer has reconnected. The writer's checkpoint read waits for that transaction
/// (a locking read) and sees it committed: the batch is applied once. A trigger counts the
/// row updates: once per row, not twice.
#[test]
fn mariadb_commit_arriving_late_applies_the_batch_once() {
    db::connect(MARIADB);
    let proxy = CommitLossProxy::start(3306);
    let via_proxy = MARIADB.replace("Port=3306;", &format!("Port={};", proxy.port));
    let table = unique("commit_late");
    let updates = format!("{table}_updates");
    exec(MARIADB, &format!("DROP TABLE IF EXISTS `{table}`"));
    exec(MARIADB, &format!("DROP TABLE IF EXISTS `{updates}`"));
    let server = rgsync::server().name(&table).start();
    let mut con = server.conn();
    people_job(&table, &via_proxy).add(&mut con);
    write_people(&mut con, "v1");
    drained(&mut con, "people", Duration::from_secs(30));
    exec(MARIADB, &format!("CREATE TABLE `{updates}` (n INT)"));
    exec(MARIADB, &format!("INSERT INTO `{updates}` VALUES (0)"));
    exec(
        MARIADB,
        &format!(
            "CREATE TRIGGER `{table}_counted` AFTER UPDATE ON `{table}` FOR EACH ROW \
             UPDATE `{updates}` SET n = n + 1"
        ),
    );

    proxy.arm_hold();
    write_people(&mut con, "v2");
    assert!(
        proxy.wait_lost(Duration::from_secs(30)),
        "no COMMIT went through the proxy"
    );
    // The writer reconnects while the first transaction still holds its locks.
    proxy.release();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(proxy.forward_held(), "the held COMMIT");
    drained(&mut con, "people", Duration::from_secs(60));

    let mut got = rows(MARIADB, &format!("SELECT id, name FROM `{table}`"));
    got.sort_by_key(|r| r[0].parse::<u64>().unwrap_or(u64::MAX));
    let want: Vec<Vec<String>> = (0..50)
        .map(|i| vec![i.to_string(), format!("v2-{i}")])
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        rows(MARIADB, &format!("SELECT n FROM `{updates}`")),
        [["50"]],
        "each row updated once: the batch was applied once"
    );
    for t in [&table, &updates, &format!("{table}_cp")] {
        exec(MARIADB, &format!("DROP TABLE `{t}`"));
    }
}

/// The `people` job into `table` over `connection`, with its own checkpoint table (the tests
/// run at once against one server).
fn people_job(table: &str, connection: &str) -> Job {
    Job::new("people", "person:{id:integer}", table, connection)
        .columns("name")
        .words(&["CREATE_TABLE", "yes", "BATCH", "100", "DURATION", "50"])
        .words(&["BACKOFF", "50", "MAX_BACKOFF", "200"])
        .words(&["CHECKPOINT_TABLE", &format!("{table}_cp")])
}

/// `HSET person:<i> name <version>-<i>` for 50 people, in one pipeline.
fn write_people(con: &mut redis::Connection, version: &str) {
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.cmd("HSET")
            .arg(format!("person:{i}"))
            .arg("name")
            .arg(format!("{version}-{i}"))
            .ignore();
    }
    pipe.query::<()>(con).expect("HSET");
}
