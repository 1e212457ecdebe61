//! The closed-loop load generator: one OS thread per virtual user (no think time), active
//! while the profile says so; per-second latency histograms merged from per-VU histograms;
//! a sampler taking the database and write-behind counters at every second boundary, and
//! after the load, until the write-behind backlog is empty.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use odbc_api::{Connection, Cursor};

use crate::stages::Profile;
use crate::stats::{self, Sample, Second};
use crate::targets::{self, Rng, Target};

/// Where requests go.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Direct upserts into `table` over ODBC.
    MariaDb { odbc: String, table: String },
    /// `HSET <prefix><id>` on a Redis server.
    Redis { url: String, prefix: String },
    /// POSTs to `http://addr/path`.
    Http { addr: String, path: String },
}

impl Kind {
    fn connect(&self) -> Result<Box<dyn Target>, String> {
        Ok(match self {
            Kind::MariaDb { odbc, table } => Box::new(targets::MariaDb::connect(odbc, table)?),
            Kind::Redis { url, prefix } => Box::new(targets::RedisHset::connect(url, prefix)?),
            Kind::Http { addr, path } => Box::new(targets::Http::connect(addr, path)?),
        })
    }
}

/// One spike run.
#[derive(Debug, Clone)]
pub(crate) struct Spike {
    pub(crate) scenario: String,
    pub(crate) kind: Kind,
    pub(crate) profile: Profile,
    /// ODBC connection and table whose rows changed per second are sampled.
    pub(crate) db: Option<(String, String)>,
    /// Redis URL and job name of the write-behind job to sample (`RGSYNC.STATUS`).
    pub(crate) rgsync: Option<(String, String)>,
    /// How long to wait for the write-behind backlog to drain after the load.
    pub(crate) drain_timeout: Duration,
    pub(crate) out_dir: PathBuf,
    /// Processes whose CPU time is measured over the run (name, pid); the load generator
    /// itself is always measured.
    pub(crate) cpu: Vec<(String, u32)>,
}

/// CPU seconds (user + system, all threads) a process has used, from `/proc/<pid>/stat`
/// (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

fn parse_cpu(stat: &str) -> Option<f64> {
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ppid(4) ... utime is field 14, stime 15 → indices 11, 12 here.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Parses `name=pid,name=pid`.
pub(crate) fn parse_pids(s: &str) -> Result<Vec<(String, u32)>, String> {
    s.split(',')
        // An empty pid (a process the script could not find) is skipped.
        .filter(|p| !p.trim().is_empty() && !p.trim_end().ends_with('='))
        .map(|p| {
            let (n, pid) = p
                .split_once('=')
                .ok_or_else(|| format!("--cpu: want name=pid, got '{p}'"))?;
            let pid = pid
                .trim()
                .parse()
                .map_err(|_| format!("--cpu: '{pid}' is not a pid"))?;
            Ok((n.trim().to_string(), pid))
        })
        .collect()
}

/// How database rows written are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DbCounter {
    /// `information_schema.TABLE_STATISTICS.ROWS_CHANGED` of the target table (needs
    /// `userstat=1`, which the script sets): rows inserted or updated in that table only.
    TableStatistics,
    /// `Handler_write + Handler_update` (server-wide: anything else writing counts too).
    Handlers,
}

impl DbCounter {
    fn describe(self) -> &'static str {
        match self {
            DbCounter::TableStatistics => {
                "information_schema.TABLE_STATISTICS.ROWS_CHANGED of the target table"
            }
            DbCounter::Handlers => "Handler_write + Handler_update (server-wide; userstat is off)",
        }
    }
}

fn query_u64s(conn: &Connection<'static>, sql: &str, col: u16) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    if let Some(mut cursor) = conn.execute(sql, (), None).map_err(|e| e.to_string())? {
        while let Some(mut row) = cursor.next_row().map_err(|e| e.to_string())? {
            let mut buf = Vec::new();
            row.get_text(col, &mut buf).map_err(|e| e.to_string())?;
            out.push(
                String::from_utf8_lossy(&buf)
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    Ok(out)
}

fn db_counter(conn: &Connection<'static>) -> DbCounter {
    match query_u64s(conn, "SELECT @@userstat", 1) {
        Ok(v) if v.first() == Some(&1) => DbCounter::TableStatistics,
        _ => DbCounter::Handlers,
    }
}

/// Rows written so far, by `counter`.
fn db_rows(conn: &Connection<'static>, counter: DbCounter, table: &str) -> Result<u64, String> {
    let sql = match counter {
        DbCounter::TableStatistics => format!(
            "SELECT COALESCE(SUM(ROWS_CHANGED),0) FROM information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA=DATABASE() AND TABLE_NAME='{}'",
            table.replace('\'', "")
        ),
        DbCounter::Handlers => {
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Handler_write','Handler_update')".into()
        }
    };
    let col = if counter == DbCounter::Handlers { 2 } else { 1 };
    Ok(query_u64s(conn, &sql, col)?.iter().sum())
}

/// `RGSYNC.STATUS <job>` as a map.
pub(crate) fn rgsync_status(
    con: &mut redis::Connection,
    job: &str,
) -> Result<HashMap<String, String>, String> {
    let v: Vec<redis::Value> = redis::cmd("RGSYNC.STATUS")
        .arg(job)
        .query(con)
        .map_err(|e| e.to_string())?;
    let s = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).to_string(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    };
    Ok(v.chunks(2)
        .filter(|p| p.len() == 2)
        .map(|p| (s(&p[0]), s(&p[1])))
        .collect())
}

struct Sampler {
    db: Option<(Connection<'static>, DbCounter, String)>,
    wb: Option<(redis::Connection, String)>,
}

impl Sampler {
    fn new(spike: &Spike) -> Result<Sampler, String> {
        let db = match &spike.db {
            Some((conn, table)) => {
                let c = targets::odbc(conn)?;
                let counter = db_counter(&c);
                Some((c, counter, table.clone()))
            }
            None => None,
        };
        let wb = match &spike.rgsync {
            Some((url, job)) => {
                let con = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .map_err(|e| format!("redis {url}: {e}"))?;
                Some((con, job.clone()))
            }
            None => None,
        };
        Ok(Sampler { db, wb })
    }

    /// Takes a sample; also says whether the write-behind job is drained (backlog 0, idle).
    fn sample(&mut self) -> (Sample, bool) {
        let mut s = Sample {
            db_rows: self
                .db
                .as_ref()
                .and_then(|(c, counter, table)| db_rows(c, *counter, table).ok()),
            ..Sample::default()
        };
        let mut drained = true;
        if let Some((con, job)) = &mut self.wb {
            if let Ok(st) = rgsync_status(con, job) {
                let n = |k: &str| st.get(k).and_then(|v| v.parse::<u64>().ok());
                s.backlog = n("backlog");
                s.lag_ms = n("lag_ms");
                s.wb_rows = n("rows");
                drained =
                    s.backlog == Some(0) && st.get("state").map(String::as_str) == Some("idle");
            } else {
                drained = false;
            }
        }
        (s, drained)
    }
}

/// What a run produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) seconds: Vec<Second>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) first_error: Option<String>,
    pub(crate) drain_s: Option<f64>,
    pub(crate) connect_errors: u32,
    pub(crate) db_counter: Option<&'static str>,
    /// CPU seconds per process over the load and the drain (name, seconds).
    pub(crate) cpu: Vec<(String, f64)>,
}

fn flush(store: &Mutex<Vec<Second>>, sec: usize, local: &mut Second) {
    if local.hist.is_empty() && local.errors == 0 {
        return;
    }
    let mut s = store.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(slot) = s.get_mut(sec) {
        slot.hist.add(&local.hist).expect("same bounds");
        slot.errors += local.errors;
    }
    local.hist.reset();
    local.errors = 0;
}

/// Runs the spike and returns the per-second data (nothing written).
pub(crate) fn run(spike: &Spike) -> Result<Outcome, String> {
    let profile = &spike.profile;
    let total = profile.total().as_secs_f64();
    let n_secs = total.ceil() as usize;
    let max = profile.max_vus() as usize;
    let store = Mutex::new(vec![Second::default(); n_secs]);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let connect_errors = Mutex::new(0u32);
    let ready = Barrier::new(max + 1);
    let go = Barrier::new(max + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let mut sampler = Sampler::new(spike)?;
    let db_counter = sampler.db.as_ref().map(|(_, c, _)| c.describe());
    let mut procs: Vec<(String, String)> = spike
        .cpu
        .iter()
        .map(|(n, p)| (n.clone(), p.to_string()))
        .collect();
    procs.push(("load generator".into(), "self".into()));
    let cpu_now = |procs: &[(String, String)]| -> Vec<Option<f64>> {
        procs.iter().map(|(_, p)| cpu_seconds(p)).collect()
    };
    let mut cpu0 = Vec::new();
    let mut cpu1 = Vec::new();
    let mut samples = Vec::new();
    let mut drain_s = None;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    std::thread::scope(|s| {
        for vu in 0..max {
            let (store, first_error, connect_errors) = (&store, &first_error, &connect_errors);
            let (ready, go, start) = (&ready, &go, &start);
            s.spawn(move || {
                let note = |e: String| {
                    let mut f = first_error.lock().unwrap_or_else(|e| e.into_inner());
                    if f.is_none() {
                        *f = Some(e);
                    }
                };
                let mut target = match spike.kind.connect() {
                    Ok(t) => Some(t),
                    Err(e) => {
                        *connect_errors.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        note(e);
                        None
                    }
                };
                let mut rng = Rng::new(seed.wrapping_add(vu as u64 * 7919));
                let mut local = Second::default();
                ready.wait();
                go.wait();
                let start = *start.get().expect("start set before go");
                let mut cur = 0usize;
                loop {
                    let t = start.elapsed().as_secs_f64();
                    if t >= total {
                        break;
                    }
                    if vu as u32 >= profile.vus_at(t) || target.is_none() {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    let (id, temp) = (rng.user(), rng.temperature());
                    let t0 = Instant::now();
                    let r = target.as_mut().map_or(Ok(()), |tg| tg.call(id, temp));
                    let us = t0.elapsed().as_micros() as u64;
                    // Attributed to the second in which the request completed.
                    let done = (start.elapsed().as_secs_f64() as usize).min(n_secs - 1);
                    if done != cur {
                        flush(store, cur, &mut local);
                        cur = done;
                    }
                    match r {
                        Ok(()) => stats::record(&mut local.hist, us),
                        Err(e) => {
                            local.errors += 1;
                            note(e);
                            // A broken connection is replaced; a refused request is not retried.
                            if let Ok(t) = spike.kind.connect() {
                                target = Some(t);
                            } else {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                }
                flush(store, cur, &mut local);
            });
        }
        ready.wait();
        cpu0 = cpu_now(&procs);
        let (s0, _) = sampler.sample();
        samples.push(s0);
        let t0 = Instant::now();
        start.set(t0).expect("start set once");
        go.wait();
        // One sample at each second boundary of the load.
        for k in 1..=n_secs {
            let at = t0 + Duration::from_secs(k as u64);
            if let Some(d) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            samples.push(sampler.sample().0);
        }
        // Then until the backlog is empty (write-behind), polled finely for the drain time.
        if spike.rgsync.is_some() {
            let load_end = t0 + Duration::from_secs_f64(total);
            let deadline = Instant::now() + spike.drain_timeout;
            let mut next = t0 + Duration::from_secs(n_secs as u64 + 1);
            loop {
                let (_, drained) = sampler.sample();
                if drained {
                    drain_s = Some(Instant::now().duration_since(load_end).as_secs_f64());
                    break;
                }
                if Instant::now() >= deadline {
                    drain_s = Some(-1.0);
                    break;
                }
                if Instant::now() >= next {
                    samples.push(sampler.sample().0);
                    next += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            // The second in which it drained, and one more (shows the backlog at 0).
            samples.push(sampler.sample().0);
        }
        cpu1 = cpu_now(&procs);
    });
    let cpu = procs
        .iter()
        .zip(cpu0.iter().zip(&cpu1))
        .filter_map(|((n, _), (a, b))| Some((n.clone(), (*b)? - (*a)?)))
        .collect();
    let mut seconds = store.into_inner().unwrap_or_else(|e| e.into_inner());
    for (i, s) in seconds.iter_mut().enumerate() {
        let a = profile.vus_at(i as f64);
        let b = profile.vus_at((i as f64 + 0.999).min(total - 1e-9));
        s.vus = a.max(b);
    }
    Ok(Outcome {
        seconds,
        samples,
        first_error: first_error.into_inner().unwrap_or_else(|e| e.into_inner()),
        drain_s,
        connect_errors: connect_errors
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        db_counter,
        cpu,
    })
}

/// Runs the spike and writes `<scenario>.csv`, `<scenario>.summary.csv`,
/// `<scenario>.info` into the output directory; prints a one-line summary.
pub(crate) fn run_and_write(spike: &Spike) -> Result<(), String> {
    std::fs::create_dir_all(&spike.out_dir).map_err(|e| e.to_string())?;
    let out = run(spike)?;
    let name = &spike.scenario;
    let rows = stats::rows(name, &out.seconds, &out.samples);
    stats::write_csv(&spike.out_dir.join(format!("{name}.csv")), &rows)
        .map_err(|e| e.to_string())?;
    let n = out.seconds.len() as u64;
    let load = stats::summarize(
        name,
        "load",
        &out.seconds,
        &out.samples,
        (0, n),
        out.drain_s,
    );
    let peak = stats::summarize(
        name,
        "peak",
        &out.seconds,
        &out.samples,
        spike.profile.peak_seconds(),
        out.drain_s,
    );
    std::fs::write(
        spike.out_dir.join(format!("{name}.summary.csv")),
        format!(
            "{}\n{}\n{}\n",
            stats::SUMMARY_HEADER,
            load.to_csv(),
            peak.to_csv()
        ),
    )
    .map_err(|e| e.to_string())?;
    let wb_rows = match (
        out.samples.first().and_then(|s| s.wb_rows),
        out.samples.last().and_then(|s| s.wb_rows),
    ) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => String::new(),
    };
    let info = [
        ("scenario", name.clone()),
        ("target", format!("{:?}", spike.kind).replace('\n', " ")),
        ("profile", spike.profile.describe()),
        ("requests_ok", load.requests.to_string()),
        ("errors", load.errors.to_string()),
        ("connect_errors", out.connect_errors.to_string()),
        (
            "first_error",
            out.first_error
                .clone()
                .unwrap_or_default()
                .replace('\n', " "),
        ),
        ("writer_rows_committed", wb_rows),
        ("db_counter", out.db_counter.unwrap_or("").to_string()),
        (
            "cpu",
            out.cpu
                .iter()
                .map(|(n, c)| format!("{n}:{c:.2}"))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        (
            "drain_s",
            out.drain_s.map_or(String::new(), |d| format!("{d:.2}")),
        ),
    ];
    let text: String = info
        .iter()
        .map(|(k, v)| format!("{k}={}\n", mask(v)))
        .collect();
    std::fs::write(spike.out_dir.join(format!("{name}.info")), text).map_err(|e| e.to_string())?;
    println!(
        "{name}: {} ok, {} errors; load {:.0} req/s p95 {:.2} ms; peak {:.0} req/s p95 {:.2} ms mean {:.2} ms{}{}",
        load.requests,
        load.errors,
        load.rps,
        load.latency.p95_ms,
        peak.rps,
        peak.latency.p95_ms,
        peak.latency.mean_ms,
        out.drain_s
            .map_or(String::new(), |d| format!("; drained {d:.1} s after the load")),
        out.first_error
            .map_or(String::new(), |e| format!("; first error: {e}"))
    );
    Ok(())
}

/// Masks `Pwd=...` in connection strings written to files.
pub(crate) fn mask(s: &str) -> String {
    let mut out = String::new();
    for part in s.split_inclusive(';') {
        let lower = part.to_ascii_lowercase();
        if lower.trim_start().starts_with("pwd=") || lower.trim_start().starts_with("password=") {
            let k = part.split('=').next().unwrap_or("");
            out.push_str(&format!("{k}=***;"));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_pids() {
        let stat = "123 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert!(cpu_seconds("self").is_some());
        assert_eq!(
            parse_pids("redis-server=12, mariadbd=34").unwrap(),
            vec![
                ("redis-server".to_string(), 12),
                ("mariadbd".to_string(), 34)
            ]
        );
        assert!(parse_pids("x").is_err());
        assert!(parse_pids("").unwrap().is_empty());
        assert_eq!(parse_pids("a=,b=2").unwrap(), vec![("b".to_string(), 2)]);
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("Driver={x};Uid=test;Pwd=test;Port=1"),
            "Driver={x};Uid=test;Pwd=***;Port=1"
        );
    }
}
