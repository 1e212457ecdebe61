//! A job that cannot work is refused at `RGSYNC.ADD` with the reason, and nothing is kept:
//! an empty or malformed connection string, a driver that is not installed, a database that
//! does not answer or refuses the credentials, a missing table without `CREATE_TABLE yes`.
//! `CHECK_CONNECTION no` accepts a database that is down on purpose.

use gears_testkit::db::{self, exec, sqlite, MARIADB};
use gears_testkit::rgsync::{self, Job};
use gears_testkit::{run, scratch};

#[test]
fn bad_connections_are_refused_at_add_and_nothing_is_kept() {
    let server = rgsync::server().name("validation").start();
    let mut con = server.conn();
    let sqlite = sqlite(&scratch("validation-db"));
    let refused = |con: &mut redis::Connection, connection: &str, extra: &[&str]| {
        let reply = Job::new("bad", "bad:{id}", "t", connection)
            .words(extra)
            .try_add(con)
            .expect_err(connection);
        reply.to_string()
    };
    let cases: &[(&str, &[&str], &str)] = &[
        ("", &[], "CONNECTION: empty"),
        ("not a dsn", &[], "attribute 1 is not key=value"),
        ("Server=127.0.0.1;Uid=x", &[], "names no DRIVER"),
        (
            "Driver={NoSuchDriver};Server=127.0.0.1",
            &[],
            "the ODBC driver 'NoSuchDriver' is not installed (installed: ",
        ),
        (
            "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Uid=x;",
            &[],
            "the database refused",
        ),
        (
            "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;Uid=test;Pwd=wrong;",
            &[],
            "Access denied",
        ),
        (&sqlite, &[], "table 't'"),
    ];
    db::connect(MARIADB); // the shared server answers (the credentials case needs it)
    for (connection, extra, want) in cases {
        let e = refused(&mut con, connection, extra);
        assert!(e.contains(want), "{connection:?}: {e}");
        assert!(!e.contains("wrong"), "the password is not echoed: {e}");
    }
    assert_eq!(run(&mut con, &["RGSYNC.LIST"]), "[]", "nothing was kept");
    // Down on purpose: accepted, and the job waits for the database.
    Job::new(
        "later",
        "later:{id}",
        "t",
        "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Uid=x;",
    )
    .words(&["CHECK_CONNECTION", "no"])
    .add(&mut con);
    // A table that exists, or CREATE_TABLE yes: accepted.
    exec(
        &sqlite,
        "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)",
    );
    Job::new("ok", "ok:{id}", "t", &sqlite).add(&mut con);
    Job::new("created", "created:{id}", "t2", &sqlite)
        .words(&["CREATE_TABLE", "yes"])
        .add(&mut con);
    let list = run(&mut con, &["RGSYNC.LIST"]);
    for job in ["later", "ok", "created"] {
        assert!(list.contains(job), "{list}");
    }
}

/// Any hash field name works once mapped to a column that is a safe identifier: quotes and
/// backticks in the field reach the table through the column they are mapped to.
#[test]
fn fields_with_quotes_map_to_safe_columns() {
    let server = rgsync::server().name("odd-fields").start();
    let mut con = server.conn();
    let sqlite = sqlite(&scratch("odd-fields-db"));
    Job::new("odd", "odd:{id}", "odd", &sqlite)
        .columns("it's=its `q`=q")
        .words(&["CREATE_TABLE", "yes", "DURATION", "10"])
        .add(&mut con);
    let refused = Job::new("bad", "bad:{id}", "bad", &sqlite)
        .columns("it's")
        .try_add(&mut con)
        .expect_err("an unmapped field with a quote is not a column name");
    assert!(
        refused.to_string().contains("forbidden character"),
        "{refused}"
    );
    run(&mut con, &["HSET", "odd:1", "it's", "a", "`q`", "b"]);
    gears_testkit::rgsync::drained(&mut con, "odd", std::time::Duration::from_secs(20));
    assert_eq!(
        gears_testkit::db::rows(&sqlite, "SELECT id, its, q FROM odd"),
        [["1", "a", "b"]]
    );
}

/// A job whose configuration the database refuses later (here from the start, accepted with
/// `CHECK_CONNECTION no`) shows `failed` with the error, dead-letters nothing, keeps its
/// backlog, and drains everything once fixed: the table created (checked again every
/// `MAX_BACKOFF`), or the job added again with the right credentials.
#[test]
fn refused_configuration_fails_visibly_keeps_the_backlog_and_resumes_when_fixed() {
    let server = rgsync::server().name("setup-failed").start();
    let mut con = server.conn();
    let sqlite = sqlite(&scratch("setup-failed-db"));
    let wait = std::time::Duration::from_secs(20);
    // The table does not exist.
    Job::new("notable", "nt:{id}", "nt", &sqlite)
        .columns("v")
        .words(&[
            "CHECK_CONNECTION",
            "no",
            "DURATION",
            "10",
            "MAX_BACKOFF",
            "200",
        ])
        .add(&mut con);
    for i in 0..5 {
        run(&mut con, &["HSET", &format!("nt:{i}"), "v", "x"]);
    }
    let st =
        gears_testkit::rgsync::status_when(&mut con, "notable", wait, |st| st["state"] == "failed");
    assert_eq!(st["state"], "failed", "{st:?}");
    assert!(st["last_error"].contains("no such table"), "{st:?}");
    assert_eq!(st["dead_letters"], "0", "{st:?}");
    assert!(st["backlog"].parse::<u64>().unwrap() >= 5, "{st:?}");
    exec(&sqlite, "CREATE TABLE nt (id TEXT PRIMARY KEY, v TEXT)");
    gears_testkit::rgsync::drained(&mut con, "notable", wait);
    assert_eq!(
        gears_testkit::db::rows(&sqlite, "SELECT COUNT(*) FROM nt"),
        [["5"]]
    );
    // Wrong credentials on MariaDB: failed; added again with the right ones, it drains.
    db::connect(MARIADB);
    let table = gears_testkit::db::unique("setup_failed");
    exec(MARIADB, &format!("DROP TABLE IF EXISTS `{table}`"));
    let wrong = MARIADB.replace("Pwd=test;", "Pwd=wrong;");
    let job = |conn: &str| {
        Job::new("creds", "cr:{id}", &table, conn)
            .columns("v")
            .words(&["CHECK_CONNECTION", "no", "CREATE_TABLE", "yes"])
            .words(&["DURATION", "10", "MAX_BACKOFF", "200"])
    };
    job(&wrong).add(&mut con);
    for i in 0..5 {
        run(&mut con, &["HSET", &format!("cr:{i}"), "v", "x"]);
    }
    let st =
        gears_testkit::rgsync::status_when(&mut con, "creds", wait, |st| st["state"] == "failed");
    assert_eq!(st["state"], "failed", "{st:?}");
    assert!(st["last_error"].contains("Access denied"), "{st:?}");
    assert!(!st["last_error"].contains("wrong"), "{st:?}");
    assert_eq!(st["dead_letters"], "0", "{st:?}");
    run(&mut con, &["RGSYNC.REMOVE", "creds"]);
    job(MARIADB).add(&mut con);
    gears_testkit::rgsync::drained(&mut con, "creds", wait);
    assert_eq!(
        gears_testkit::db::rows(MARIADB, &format!("SELECT COUNT(*) FROM `{table}`")),
        [["5"]]
    );
    exec(MARIADB, &format!("DROP TABLE `{table}`"));
}
