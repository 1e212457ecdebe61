//! rgsync benchmark (run by `scripts/bench-rgsync.sh`, which starts the servers):
//!
//! - front end: 48 clients writing user hashes through Redis + write-behind, vs the same 48
//!   clients upserting rows directly into MariaDB (throughput and p95 latency ratios);
//! - capture overhead with these clients (context: the script's verdict comes from
//!   `scripts/bench-capture.sh`, redis-benchmark): HSET with the job (writer paused: the
//!   capture alone) ÷ plain HSET, and ÷ a Lua `EVAL` doing HSET+XADD; also with the writer
//!   draining on the same cores;
//! - drain: rows/s the writer puts into MariaDB from a paused-then-released backlog ÷ direct
//!   single-row upserts from 48 clients; time to drain the backlog;
//! - lag: p99 of the age of the oldest unapplied change, sampled every 20 ms at a steady
//!   write rate, after a 2 s warm-up (whose maximum is printed apart).
//!
//! `rgsync_bench <plain redis port> <rgsync redis port> [seconds] [backlog] [rate]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use odbc_api::{ConnectionOptions, IntoParameter};

const MARIADB: &str =
    "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=test;Uid=test;Pwd=test;";
const CLIENTS: usize = 48;

struct Run {
    ops: u64,
    secs: f64,
    lat_us: Vec<u32>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        let mut l = self.lat_us.clone();
        l.sort_unstable();
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |v| *v as f64 / 1000.0)
    }
    fn show(&self, name: &str) {
        println!(
            "{name:<44} {:>9.0} ops/s   p50 {:>6.2} ms   p95 {:>6.2} ms   p99 {:>6.2} ms",
            self.rps(),
            self.pct(0.50),
            self.pct(0.95),
            self.pct(0.99)
        );
    }
}

/// Runs `op` from `CLIENTS` threads for `secs`, each thread with its own state from `init`.
fn closed_loop<S, I, F>(secs: u64, init: I, op: F) -> Run
where
    I: Fn() -> S + Send + Sync + 'static,
    F: Fn(&mut S, u64) + Send + Sync + 'static,
    S: 'static,
{
    let init = Arc::new(init);
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (init, op, stop, counter) =
                (init.clone(), op.clone(), stop.clone(), counter.clone());
            std::thread::spawn(move || {
                let mut state = init();
                let mut lat = Vec::new();
                let mut rng = 0x9e3779b97f4a7c15u64 ^ (t as u64 * 0x1234567);
                while !stop.load(Ordering::Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let t0 = Instant::now();
                    op(&mut state, rng % 1_000_000);
                    lat.push(t0.elapsed().as_micros() as u32);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut lat_us = Vec::new();
    for h in handles {
        lat_us.extend(h.join().unwrap());
    }
    Run {
        ops: counter.load(Ordering::Relaxed),
        secs: start.elapsed().as_secs_f64(),
        lat_us,
    }
}

fn redis_con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn sql(conn: &str, q: &str) {
    let env = odbc_api::environment().unwrap();
    let c = env
        .connect_with_connection_string(conn, ConnectionOptions::default())
        .expect("MariaDB (scripts/db.sh)");
    c.execute(q, (), None)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
}

fn status(con: &mut redis::Connection, field: &str) -> String {
    let v: Vec<redis::Value> = redis::cmd("RGSYNC.STATUS").arg("bench").query(con).unwrap();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    };
    v.chunks(2)
        .find(|p| text(&p[0]) == field)
        .map(|p| text(&p[1]))
        .unwrap_or_default()
}

fn wait_drained(con: &mut redis::Connection, timeout: Duration) -> Duration {
    let t = Instant::now();
    while status(con, "backlog") != "0" || status(con, "state") != "idle" {
        assert!(t.elapsed() < timeout, "not drained");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn writer_registration(con: &mut redis::Connection) -> String {
    let regs: Vec<redis::Value> = redis::cmd("RG.DUMPREGISTRATIONS").query(con).unwrap();
    for r in regs {
        let redis::Value::Array(fields) = r else {
            continue;
        };
        let text: Vec<String> = fields
            .iter()
            .map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
                redis::Value::SimpleString(s) => s.clone(),
                _ => String::new(),
            })
            .collect();
        if text.iter().any(|t| t == "rgsync_writer") {
            return text[1].clone();
        }
    }
    panic!("no rgsync_writer registration");
}

/// Seconds of the steady load before the lag is sampled.
const WARM_UP_SECS: u64 = 2;

/// The job's batching for the drain and lag runs (the front end runs on rgsync's defaults).
const DRAIN_OPTIONS: &str = "BATCH 1000 DURATION 20";

/// `RGSYNC.ADD bench …` writing `user:{id}`'s `temp` into `bench_wb`, plus `options`.
fn add_job(con: &mut redis::Connection, options: &str) {
    redis::cmd("RGSYNC.ADD")
        .arg(&[
            "bench",
            "KEY",
            "user:{id}",
            "TABLE",
            "bench_wb",
            "COLUMNS",
            "temp",
            "CONNECTION",
            MARIADB,
            "CREATE_TABLE",
            "yes",
        ])
        .arg(options.split_whitespace().collect::<Vec<_>>())
        .query::<()>(con)
        .unwrap();
}

/// One request of the Redis runs: `HSET user:<id> temp 36.7`.
fn hset_user(c: &mut redis::Connection, id: u64) {
    redis::cmd("HSET")
        .arg(format!("user:{id}"))
        .arg("temp")
        .arg("36.7")
        .query::<()>(c)
        .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plain: u16 = args[1].parse().unwrap();
    let wb: u16 = args[2].parse().unwrap();
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let backlog: u64 = args
        .get(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rate: u64 = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(20_000);

    sql(MARIADB, "DROP TABLE IF EXISTS bench_direct");
    sql(MARIADB, "DROP TABLE IF EXISTS bench_wb");
    sql(MARIADB, "DELETE FROM rgsync_checkpoint WHERE job = 'bench'");
    sql(
        MARIADB,
        "CREATE TABLE bench_direct (id VARCHAR(100) PRIMARY KEY, temp VARCHAR(100))",
    );
    println!(
        "== {CLIENTS} clients, {secs} s per run, ids random in [0, 1e6), MariaDB at 127.0.0.1:3306"
    );

    // A. direct single-row upserts into MariaDB (the demo's /db endpoint).
    let direct = closed_loop(
        secs,
        || {
            odbc_api::environment()
                .unwrap()
                .connect_with_connection_string(MARIADB, ConnectionOptions::default())
                .unwrap()
        },
        |c, id| {
            let temp = format!("{:.2}", 36.7 + (id % 500) as f64 / 100.0);
            c.execute(
                "INSERT INTO bench_direct (id, temp) VALUES (?, ?) ON DUPLICATE KEY UPDATE temp = VALUES(temp)",
                (&id.to_string().into_parameter(), &temp.into_parameter()),
                None,
            )
            .unwrap();
        },
    );
    direct.show("direct MariaDB upserts");

    // B. plain HSET; C. Lua HSET+XADD (same plain server).
    let hset = |port: u16| move || redis_con(port);
    let plain_run = closed_loop(secs, hset(plain), hset_user);
    plain_run.show("plain HSET");
    let lua = closed_loop(secs, hset(plain), |c: &mut redis::Connection, id| {
        redis::cmd("EVAL")
            .arg("redis.call('HSET', KEYS[1], 'temp', ARGV[1]); redis.call('XADD', 'wb-stream', '*', 'k', KEYS[1], 'temp', ARGV[1])")
            .arg(1)
            .arg(format!("user:{id}"))
            .arg("36.7")
            .query::<()>(c)
            .unwrap();
    });
    lua.show("Lua EVAL HSET+XADD");

    // D. HSET through the write-behind job with rgsync's defaults (batch 100, duration 100 ms),
    // like the demo; the writer drains into MariaDB meanwhile.
    let mut con = redis_con(wb);
    add_job(&mut con, "");
    // D1. the capture alone: the writer paused, so nothing but the capture competes with the
    // clients (like-for-like with the Lua HSET+XADD); the backlog is drained afterwards.
    let writer = writer_registration(&mut con);
    redis::cmd("RG.PAUSEREGISTRATIONS")
        .arg(&writer)
        .query::<()>(&mut con)
        .unwrap();
    let capture_run = closed_loop(secs, hset(wb), hset_user);
    capture_run.show("HSET with write-behind (writer paused)");
    redis::cmd("RG.UNPAUSEREGISTRATIONS")
        .arg(&writer)
        .query::<()>(&mut con)
        .unwrap();
    wait_drained(&mut con, Duration::from_secs(600));
    // D2. the same while the writer drains into MariaDB on the same cores.
    let wb_run = closed_loop(secs, hset(wb), hset_user);
    wb_run.show("HSET with write-behind to MariaDB");
    wait_drained(&mut con, Duration::from_secs(600));

    // E. drain a backlog, with the job re-added with batches for throughput (the stream and
    // its consumer group stay: the job resumes where it was).
    redis::cmd("RGSYNC.REMOVE")
        .arg("bench")
        .query::<()>(&mut con)
        .unwrap();
    add_job(&mut con, DRAIN_OPTIONS);
    println!("job re-added with {DRAIN_OPTIONS} for the drain and lag runs");
    let writer = writer_registration(&mut con);
    redis::cmd("RG.PAUSEREGISTRATIONS")
        .arg(&writer)
        .query::<()>(&mut con)
        .unwrap();
    let fill = Instant::now();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = redis_con(wb);
                let per = backlog / 8;
                let mut i = 0;
                while i < per {
                    let mut pipe = redis::pipe();
                    for _ in 0..500.min(per - i) {
                        let id = (t * per + i) * 7919 % 1_000_000;
                        pipe.cmd("HSET")
                            .arg(format!("user:{id}"))
                            .arg("temp")
                            .arg(i)
                            .ignore();
                        i += 1;
                    }
                    pipe.query::<()>(&mut c).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let filled: u64 = redis::cmd("XLEN")
        .arg("{0}rgsync:bench")
        .query(&mut con)
        .unwrap();
    println!(
        "backlog of {filled} entries written in {:.1} s (writer paused)",
        fill.elapsed().as_secs_f64()
    );
    let rows_before: u64 = status(&mut con, "rows").parse().unwrap_or(0);
    redis::cmd("RG.UNPAUSEREGISTRATIONS")
        .arg(&writer)
        .query::<()>(&mut con)
        .unwrap();
    let took = wait_drained(&mut con, Duration::from_secs(1200));
    let rows_after: u64 = status(&mut con, "rows").parse().unwrap_or(0);
    let drain_rps = (rows_after - rows_before) as f64 / took.as_secs_f64();
    println!(
        "drain: {} rows in {:.1} s = {drain_rps:.0} rows/s into MariaDB",
        rows_after - rows_before,
        took.as_secs_f64()
    );

    // F. lag at a steady rate.
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let load = std::thread::spawn(move || {
        let mut c = redis_con(wb);
        let start = Instant::now();
        let mut sent = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if due > sent {
                let n = (due - sent).min(1000);
                let mut pipe = redis::pipe();
                for k in 0..n {
                    pipe.cmd("HSET")
                        .arg(format!("user:{}", (sent + k) % 1_000_000))
                        .arg("temp")
                        .arg(k)
                        .ignore();
                }
                pipe.query::<()>(&mut c).unwrap();
                sent += n;
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent as f64 / start.elapsed().as_secs_f64()
    });
    // The first seconds are the writer and MariaDB catching up from the drain before (one
    // stall of up to ~0.7 s was seen there): reported apart, not in the steady-state figures.
    let warm_up = Instant::now();
    let mut warm_up_max = 0u64;
    while warm_up.elapsed() < Duration::from_secs(WARM_UP_SECS) {
        warm_up_max = warm_up_max.max(status(&mut con, "lag_ms").parse::<u64>().unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("lag during the first {WARM_UP_SECS} s of the steady load (warm-up, not counted): max {warm_up_max} ms");
    let mut lags = Vec::new();
    let mut worst = (0u64, 0.0f64); // (lag, seconds into the run)
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        let lag = status(&mut con, "lag_ms").parse::<u64>().unwrap_or(0);
        if lag > worst.0 {
            worst = (lag, t.elapsed().as_secs_f64());
        }
        lags.push(lag);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let achieved = load.join().unwrap();
    lags.sort_unstable();
    let p = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "lag at {achieved:.0} writes/s: p50 {} ms, p99 {} ms, max {} ms at {:.1} s into the run (age of the oldest unapplied change, {} samples, {} over 100 ms)",
        p(0.5),
        p(0.99),
        lags[lags.len() - 1],
        worst.1,
        lags.len(),
        lags.iter().filter(|l| **l > 100).count()
    );
    wait_drained(&mut con, Duration::from_secs(600));

    println!("== ratios");
    println!(
        "front end: throughput {:.2}x (goal >= 2.0), p95 latency {:.3} (goal <= 0.333)",
        wb_run.rps() / direct.rps(),
        wb_run.pct(0.95) / direct.pct(0.95)
    );
    println!(
        "capture with these 48 client threads (context; the verdict is bench-capture.sh's): HSET with job (writer paused) / plain HSET = {:.2}; / Lua HSET+XADD = {:.2}",
        capture_run.rps() / plain_run.rps(),
        capture_run.rps() / lua.rps()
    );
    println!(
        "  with the writer draining into MariaDB on the same cores: / plain HSET = {:.2}, / Lua HSET+XADD = {:.2}",
        wb_run.rps() / plain_run.rps(),
        wb_run.rps() / lua.rps()
    );
    println!(
        "drain: writer rows/s / direct upserts rows/s = {:.2}x (goal >= 3); {} entries drained in {:.1} s",
        drain_rps / direct.rps(),
        filled,
        took.as_secs_f64()
    );
}
