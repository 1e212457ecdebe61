//! The connector and writer against real databases: an SQLite file, and MariaDB and
//! PostgreSQL started by `scripts/db.sh` (127.0.0.1, database/user/password `test`). A
//! server that does not answer fails the test with a message; nothing is skipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gears::host::StreamId;
use odbc_api::{ConnectionOptions, Cursor, ResultSetMetadata};

use crate::change::{Change, Op};
use crate::config::JobConfig;
use crate::connector::OdbcConnector;
use crate::error::SyncError;
use crate::writer::{BatchReport, Entry, Sink, Writer};

pub(crate) const MARIADB: &str =
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;Uid=test;Pwd=test;";
pub(crate) const POSTGRES: &str =
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=test;Uid=test;Pwd=test;";

static N: AtomicUsize = AtomicUsize::new(0);

fn sqlite() -> String {
    let dir = std::env::temp_dir().join(format!("rgsync-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    format!(
        "Driver={{SQLite3}};Database={}/t{}.db",
        dir.display(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs SQL outside the writer (setup and checks); panics with a hint if unreachable.
pub(crate) fn exec(conn: &str, sql: &str) {
    let env = odbc_api::environment().unwrap();
    let c = env
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .unwrap_or_else(|e| panic!("database not reachable ({e}); start it with scripts/db.sh"));
    c.execute(sql, (), None)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Every row of `sql` as text (NULL as "NULL"), sorted.
pub(crate) fn rows(conn: &str, sql: &str) -> Vec<Vec<String>> {
    let env = odbc_api::environment().unwrap();
    let c = env
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .unwrap_or_else(|e| panic!("database not reachable ({e}); start it with scripts/db.sh"));
    let mut out = Vec::new();
    if let Some(mut cursor) = c.execute(sql, (), None).unwrap() {
        let n = cursor.num_result_cols().unwrap() as u16;
        while let Some(mut row) = cursor.next_row().unwrap() {
            let mut r = Vec::new();
            for i in 1..=n {
                let mut buf = Vec::new();
                let some = row.get_text(i, &mut buf).unwrap();
                r.push(if some {
                    String::from_utf8_lossy(&buf).to_string()
                } else {
                    "NULL".into()
                });
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

#[derive(Default)]
struct Recorder {
    dead: Vec<(StreamId, String)>,
    acks: Vec<(String, String, bool)>,
}

impl Sink for Recorder {
    fn dead_letter(&mut self, entry: &Entry, error: &str) {
        self.dead.push((entry.id, error.to_string()));
    }
    fn ack(&mut self, key: &str, ack: &str, result: Result<(), &str>) {
        self.acks
            .push((key.to_string(), ack.to_string(), result.is_ok()));
    }
}

fn job(conn: &str, table: &str, extra: &[&str]) -> JobConfig {
    let mut a: Vec<String> = [
        "j",
        "KEY",
        "u:{region}:{id:integer}",
        "TABLE",
        table,
        "COLUMNS",
        "name age:integer score:float seen=seen_at:timestamp",
        "CONNECTION",
        conn,
        "BACKOFF",
        "5",
        "MAX_ATTEMPTS",
        "2",
        "CHECKPOINT_TABLE",
    ]
    .map(String::from)
    .to_vec();
    a.push(format!("{table}_cp"));
    a.extend(extra.iter().map(|s| s.to_string()));
    if !extra.contains(&"CREATE_TABLE") {
        a.extend(["CREATE_TABLE".to_string(), "yes".to_string()]);
    }
    JobConfig::parse_args(&a).unwrap()
}

struct Feed(u64);

impl Feed {
    fn entry(&mut self, key: &str, op: Op, ack: Option<&str>, fields: &[(&str, &str)]) -> Entry {
        self.0 += 1;
        Entry {
            id: StreamId {
                ms: 1000,
                seq: self.0,
            },
            fields: Change {
                key: key.into(),
                op,
                ack: ack.map(String::from),
                fields: fields
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            }
            .to_fields(),
        }
    }

    /// Upserts of keys `u:<region>:0` to `u:<region>:<n - 1>`, key `i` with `fields(i)`.
    fn upserts(
        &mut self,
        region: &str,
        n: usize,
        ack: Option<&str>,
        fields: impl Fn(usize) -> Vec<(&'static str, String)>,
    ) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                let fields = fields(i);
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(f, v)| (*f, v.as_str())).collect();
                self.entry(&format!("u:{region}:{i}"), Op::Upsert, ack, &fields)
            })
            .collect()
    }
}

fn no_wait(_: Duration, _: &SyncError) -> bool {
    true
}

/// Writes `batch` from `stream` with a new writer (a restarted server), never waiting.
fn write_fresh(job: &JobConfig, stream: &str, batch: &[Entry], sink: &mut Recorder) -> BatchReport {
    Writer::new(job, stream)
        .write_batch(job, batch, sink, &no_wait)
        .unwrap()
}

fn select(job: &JobConfig) -> String {
    let q = |s: &str| job.dialect.quote(s);
    format!(
        "SELECT {}, {}, {}, {}, {}, {} FROM {}",
        q("region"),
        q("id"),
        q("name"),
        q("age"),
        q("score"),
        q("seen_at"),
        q(&job.table)
    )
}

/// Upserts, partial updates, deletes, composite keys, typed columns, acks, injection
/// attempts, conversion failures; the table must end exactly as expected.
fn contents_end_exact(conn: &str) {
    let table = unique("users");
    let job = job(conn, &table, &["COALESCE", "no"]);
    let mut w = Writer::new(&job, "{0}rgsync:j");
    let mut sink = Recorder::default();
    let mut f = Feed(0);
    let evil = "x'); DROP TABLE users;--";
    let batch = vec![
        f.entry(
            "u:eu:1",
            Op::Upsert,
            None,
            &[("name", "ann"), ("age", "31")],
        ),
        f.entry(
            "u:eu:2",
            Op::Upsert,
            Some("ack2"),
            &[("name", "bob"), ("score", "2.5")],
        ),
        f.entry(
            "u:us:1",
            Op::Upsert,
            None,
            &[("name", evil), ("seen", "2024-05-06T07:08:09Z")],
        ),
        f.entry(
            "u:eu:1",
            Op::Upsert,
            None,
            &[("name", "ann2"), ("age", "32")],
        ),
        f.entry("u:eu:2", Op::Delete, None, &[]),
        f.entry("u:eu:3", Op::Upsert, Some("bad"), &[("age", "thirty")]),
        f.entry("u:eu:notanumber", Op::Upsert, None, &[]),
        f.entry(&format!("u:{evil}:4"), Op::Upsert, None, &[("name", "n")]),
    ];
    let report = w.write_batch(&job, &batch, &mut sink, &no_wait).unwrap();
    assert_eq!(report.dead_lettered, 2, "{:?}", sink.dead);
    assert!(sink.dead[0]
        .1
        .contains("cannot convert 'thirty' to integer"));
    assert!(sink.dead[1]
        .1
        .contains("cannot convert 'notanumber' to integer"));
    assert!(sink.acks.contains(&("u:eu:2".into(), "ack2".into(), true)));
    assert!(sink.acks.contains(&("u:eu:3".into(), "bad".into(), false)));
    // a partial update: only age changes in the hash, the whole mapped row is written
    let batch2 = vec![f.entry(
        "u:eu:1",
        Op::Upsert,
        None,
        &[("name", "ann2"), ("age", "33")],
    )];
    w.write_batch(&job, &batch2, &mut sink, &no_wait).unwrap();
    let got = rows(conn, &select(&job));
    let ts = |s: &str| s.to_string();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0][..4], [ts("eu"), ts("1"), ts("ann2"), ts("33")]);
    assert_eq!(got[0][4], "NULL");
    assert_eq!(got[1][..3], [ts("us"), ts("1"), ts(evil)]);
    assert!(got[1][5].starts_with("2024-05-06 07:08:09"), "{got:?}");
    assert_eq!(got[2][..3], [ts(evil), ts("4"), ts("n")]);
    assert_eq!(w.checkpoint(), Some(StreamId { ms: 1000, seq: 9 }));
}

/// A batch replayed after a crash between commit and ack is not applied twice.
fn replay_is_skipped(conn: &str) {
    let table = unique("eo");
    let job = job(conn, &table, &[]);
    let mut f = Feed(0);
    let batch = f.upserts("r", 50, Some("a"), |i| vec![("age", i.to_string())]);
    let mut sink = Recorder::default();
    write_fresh(&job, "s1", &batch, &mut sink);
    // Someone changes a row in the database; a replay (new writer: a restarted server)
    // would overwrite it if it applied the batch again.
    let q = |s: &str| job.dialect.quote(s);
    exec(
        conn,
        &format!(
            "UPDATE {} SET {} = 999 WHERE {} = 7",
            q(&table),
            q("age"),
            q("id")
        ),
    );
    let mut again = Recorder::default();
    let report = write_fresh(&job, "s1", &batch, &mut again);
    assert_eq!(report.skipped, 50);
    assert_eq!(report.rows, 0);
    assert_eq!(again.acks.len(), 50, "acks are re-sent for skipped entries");
    let age7 = rows(
        conn,
        &format!(
            "SELECT {} FROM {} WHERE {} = 7",
            q("age"),
            q(&table),
            q("id")
        ),
    );
    assert_eq!(age7, [["999"]]);
    // Another shard's stream has its own checkpoint: not skipped.
    let r = write_fresh(&job, "s2", &batch[..1], &mut again);
    assert_eq!(r.rows, 1);
}

/// A record the database refuses goes to the dead letters after its attempts; the others
/// of its batch are written. Until then the failed batch left nothing behind (one
/// transaction per batch, rolled back).
fn poison_is_isolated(conn: &str) {
    let table = unique("poison");
    let job = job(conn, &table, &["CREATE_TABLE", "no"]);
    let q = |s: &str| job.dialect.quote(s);
    let text_key = if job.dialect == crate::dialect::Dialect::MySql {
        "VARCHAR(50)"
    } else {
        "TEXT"
    };
    exec(
        conn,
        &format!(
            "CREATE TABLE {} ({} {text_key} NOT NULL, {} BIGINT NOT NULL, {} {text_key}, {} BIGINT CHECK ({} >= 0), {} FLOAT, {} {text_key}, PRIMARY KEY ({}, {}))",
            q(&table), q("region"), q("id"), q("name"), q("age"), q("age"), q("score"), q("seen_at"), q("region"), q("id")
        ),
    );
    let mut f = Feed(0);
    // Three statements (upsert, delete, upsert ×2): the first succeeds, the last fails.
    let batch = vec![
        f.entry("u:a:1", Op::Upsert, None, &[("age", "1")]),
        f.entry("u:a:9", Op::Delete, None, &[]),
        f.entry("u:a:2", Op::Upsert, Some("p"), &[("age", "-5")]),
        f.entry("u:a:3", Op::Upsert, None, &[("age", "3")]),
    ];
    let mut sink = Recorder::default();
    let mut w = Writer::new(&job, "s");
    // One transaction per batch: when the writer waits to retry the failed batch, nothing of
    // it is in the table (the first statement's row was rolled back with the rest).
    let table_at_first_wait = std::cell::RefCell::new(None);
    let count = format!("SELECT COUNT(*) FROM {}", q(&table));
    let wait = |_: Duration, _: &SyncError| {
        let mut seen = table_at_first_wait.borrow_mut();
        if seen.is_none() {
            *seen = Some(rows(conn, &count));
        }
        true
    };
    let report = w.write_batch(&job, &batch, &mut sink, &wait).unwrap();
    assert_eq!(
        table_at_first_wait.into_inner(),
        Some(vec![vec!["0".to_string()]])
    );
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(sink.dead[0].0, StreamId { ms: 1000, seq: 3 });
    assert!(sink.acks.contains(&("u:a:2".into(), "p".into(), false)));
    let got = rows(
        conn,
        &format!("SELECT {}, {} FROM {}", q("id"), q("age"), q(&table)),
    );
    assert_eq!(got, [["1", "1"], ["3", "3"]]);
    assert_eq!(w.checkpoint(), Some(StreamId { ms: 1000, seq: 4 }));
}

/// A record that makes the database drop the connection (here a PostgreSQL trigger that
/// terminates its own backend, 57P01, "transient" by its kind) while new connections keep
/// being accepted: after `MAX_ATTEMPTS` such losses in a row it counts as the record's
/// failure and goes to the dead letters; the others are written. Before, the writer retried
/// it forever and the job stood still.
#[test]
fn postgres_connection_killing_record_is_isolated() {
    let conn = POSTGRES;
    let table = unique("killer");
    let job = job(conn, &table, &["CREATE_TABLE", "no"]);
    let q = |s: &str| job.dialect.quote(s);
    exec(
        conn,
        &format!(
            "CREATE TABLE {} (region TEXT NOT NULL, id BIGINT NOT NULL, name TEXT, age BIGINT, score FLOAT, seen_at TIMESTAMP, PRIMARY KEY (region, id))",
            q(&table)
        ),
    );
    exec(
        conn,
        &format!(
            "CREATE FUNCTION {table}_kill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.name = 'kill' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; \
             RETURN NEW; END $$"
        ),
    );
    exec(
        conn,
        &format!(
            "CREATE TRIGGER {table}_kill BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {table}_kill()",
            q(&table)
        ),
    );
    let mut f = Feed(0);
    let batch = vec![
        f.entry("u:a:1", Op::Upsert, None, &[("name", "one")]),
        f.entry("u:a:2", Op::Upsert, Some("k"), &[("name", "kill")]),
        f.entry("u:a:3", Op::Upsert, None, &[("name", "three")]),
    ];
    let mut sink = Recorder::default();
    let mut w = Writer::new(&job, "s");
    // A bounded number of waits: retrying forever fails the test instead of hanging it.
    let waits = std::cell::Cell::new(0u32);
    let wait = |_: Duration, _: &SyncError| {
        waits.set(waits.get() + 1);
        waits.get() < 50
    };
    let report = w
        .write_batch(&job, &batch, &mut sink, &wait)
        .unwrap_or_else(|e| panic!("after {} waits: {e}", waits.get()));
    assert_eq!(report.dead_lettered, 1, "{report:?}");
    assert_eq!(sink.dead[0].0, StreamId { ms: 1000, seq: 2 });
    assert!(
        sink.dead[0].1.contains("connection was lost"),
        "{:?}",
        sink.dead
    );
    assert!(sink.acks.contains(&("u:a:2".into(), "k".into(), false)));
    let got = rows(
        conn,
        &format!("SELECT {}, {} FROM {}", q("id"), q("name"), q(&table)),
    );
    assert_eq!(got, [["1", "one"], ["3", "three"]]);
    exec(conn, &format!("DROP TABLE {}", q(&table)));
    exec(conn, &format!("DROP FUNCTION {table}_kill()"));
}

/// Coalescing: many changes of a few keys in one batch become one row each.
fn coalescing(conn: &str) {
    let table = unique("co");
    let job = job(conn, &table, &["COALESCE", "yes"]);
    let mut f = Feed(0);
    let mut batch = Vec::new();
    for round in 0..20 {
        for k in 0..5 {
            batch.push(f.entry(
                &format!("u:c:{k}"),
                Op::Upsert,
                None,
                &[("age", &round.to_string())],
            ));
        }
    }
    batch.push(f.entry("u:c:4", Op::Delete, None, &[]));
    let mut sink = Recorder::default();
    let r = write_fresh(&job, "s", &batch, &mut sink);
    assert_eq!(r.rows, 5);
    let q = |s: &str| job.dialect.quote(s);
    let got = rows(
        conn,
        &format!("SELECT {}, {} FROM {}", q("id"), q("age"), q(&table)),
    );
    assert_eq!(got, [["0", "19"], ["1", "19"], ["2", "19"], ["3", "19"]]);
}

/// A big batch goes through several multi-row statements in one transaction.
fn large_batch(conn: &str) {
    let table = unique("big");
    let job = job(conn, &table, &[]);
    let mut f = Feed(0);
    let batch = f.upserts("b", 2500, None, |i| {
        vec![("name", format!("n{i}")), ("age", i.to_string())]
    });
    let mut sink = Recorder::default();
    let r = write_fresh(&job, "s", &batch, &mut sink);
    assert_eq!(r.rows, 2500);
    let q = |s: &str| job.dialect.quote(s);
    let got = rows(
        conn,
        &format!("SELECT COUNT(*), SUM({}) FROM {}", q("age"), q(&table)),
    );
    assert_eq!(got, [["2500", "3123750"]]);
}

/// The database is unreachable: transient, retried (here: given up at once).
fn unreachable_is_transient(conn: &str) {
    let job = job(conn, &unique("down"), &[]);
    let mut f = Feed(0);
    let batch = vec![f.entry("u:a:1", Op::Upsert, None, &[])];
    let waits = std::cell::Cell::new(0);
    let give_up_after_two = |_: Duration, _: &SyncError| {
        waits.set(waits.get() + 1);
        waits.get() < 3
    };
    let mut sink = Recorder::default();
    let err = Writer::new(&job, "s")
        .write_batch(&job, &batch, &mut sink, &give_up_after_two)
        .unwrap_err();
    assert!(matches!(err, crate::SyncError::Stopped(_)), "{err}");
    assert_eq!(waits.get(), 3);
    assert!(sink.dead.is_empty(), "an outage never dead-letters records");
}

/// The masters of a cluster prepare one job's tables at the same moment: each succeeds (the
/// tables are created once; whoever loses the race finds them), five rounds of six.
fn concurrent_prepare(conn: &str) {
    for round in 0..5 {
        let job = job(conn, &unique(&format!("race{round}")), &[]);
        let start = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            let racers: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        let mut db = OdbcConnector::new(&job);
                        db.connect().expect("connect");
                        start.wait();
                        db.prepare(&job)
                    })
                })
                .collect();
            for racer in racers {
                racer.join().expect("no panic").expect("prepare");
            }
        });
    }
}

/// The cases run against each database, as `<database>::<case>` tests.
macro_rules! suite {
    ($m:ident, $conn:expr) => {
        suite!(@cases $m, $conn, contents_end_exact, replay_is_skipped, poison_is_isolated,
            coalescing, large_batch, concurrent_prepare);
    };
    (@cases $m:ident, $conn:expr, $($case:ident),*) => {
        mod $m {
            $(
                #[test]
                fn $case() {
                    super::$case(&$conn);
                }
            )*
        }
    };
}

suite!(sqlite, super::sqlite());
suite!(mariadb, super::MARIADB);
suite!(postgres, super::POSTGRES);

#[test]
fn unreachable_mariadb_port_is_transient() {
    unreachable_is_transient(
        "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;Database=test;Uid=test;Pwd=test;",
    );
}

#[test]
fn unreachable_postgres_port_is_transient() {
    unreachable_is_transient(
        "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=test;Uid=test;Pwd=test;",
    );
}

/// Writer throughput without Redis (run by hand: `cargo test --release -p recipes-rgsync --lib
/// writer_throughput -- --ignored --nocapture`).
#[test]
#[ignore]
fn writer_throughput_mariadb() {
    let table = unique("tp");
    let job = job(MARIADB, &table, &[]);
    let mut w = Writer::new(&job, "tp");
    let mut f = Feed(0);
    let mut sink = Recorder::default();
    let batches: Vec<Vec<Entry>> = (0..100)
        .map(|b| {
            (0..1000)
                .map(|i| {
                    let id = (b * 1000 + i) * 7919 % 1_000_000;
                    f.entry(
                        &format!("u:r:{id}"),
                        Op::Upsert,
                        None,
                        &[("name", "x"), ("age", "1")],
                    )
                })
                .collect()
        })
        .collect();
    let t = std::time::Instant::now();
    for b in &batches {
        w.write_batch(&job, b, &mut sink, &no_wait).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "writer alone: 100000 rows in {secs:.2} s = {:.0} rows/s",
        100_000.0 / secs
    );
}
