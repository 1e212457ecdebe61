//! The closed-loop load generator: one OS thread per virtual user (no think time), active
//! while the profile says so; per-second latency histograms merged from per-VU histograms;
//! a sampler taking the database and write-behind counters at every second boundary, and
//! after the load, until the write-behind backlog is empty.

use std::path::PathBuf;
use std::sync::{Barrier, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::sampler::Sampler;
use crate::stages::Profile;
use crate::stats::{self, Sample, Second, Summary};
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

/// Locks `m`, also after a thread panicked holding it (the data stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a VU's counts of second `sec` to the run's, and empties them.
fn flush(store: &Mutex<Vec<Second>>, sec: usize, local: &mut Second) {
    if local.hist.is_empty() && local.errors == 0 {
        return;
    }
    if let Some(slot) = lock(store).get_mut(sec) {
        slot.hist.add(&local.hist).expect("same bounds");
        slot.errors += local.errors;
    }
    local.hist.reset();
    local.errors = 0;
}

/// A run's length: `total` seconds, counted in `n_secs` whole seconds.
#[derive(Debug, Clone, Copy)]
struct Clock {
    total: f64,
    n_secs: usize,
}

impl Clock {
    fn of(profile: &Profile) -> Clock {
        let total = profile.total().as_secs_f64();
        Clock {
            total,
            n_secs: total.ceil() as usize,
        }
    }

    /// The second `elapsed` falls in (the last one for the time after the end).
    fn second_of(self, elapsed: Duration) -> usize {
        (elapsed.as_secs_f64() as usize).min(self.n_secs - 1)
    }
}

/// What the VU threads share: the run's seconds, the first error, the connections that
/// failed, and the start (every VU connected, then all go at once).
struct Shared {
    store: Mutex<Vec<Second>>,
    first_error: Mutex<Option<String>>,
    connect_errors: Mutex<u32>,
    ready: Barrier,
    go: Barrier,
    start: OnceLock<Instant>,
}

impl Shared {
    /// For `vus` threads and the thread that samples.
    fn new(clock: Clock, vus: usize) -> Shared {
        Shared {
            store: Mutex::new(vec![Second::default(); clock.n_secs]),
            first_error: Mutex::new(None),
            connect_errors: Mutex::new(0),
            ready: Barrier::new(vus + 1),
            go: Barrier::new(vus + 1),
            start: OnceLock::new(),
        }
    }

    /// Keeps `e` if it is the run's first error.
    fn note(&self, e: String) {
        lock(&self.first_error).get_or_insert(e);
    }

    /// A VU's first connection; a failure is counted and noted, and the VU stays idle.
    fn connect(&self, kind: &Kind) -> Option<Box<dyn Target>> {
        kind.connect()
            .map_err(|e| {
                *lock(&self.connect_errors) += 1;
                self.note(e);
            })
            .ok()
    }
}

/// One virtual user: connects, waits for the start, then sends requests back to back while
/// the profile has it active, each latency counted in the second it completed in.
fn virtual_user(spike: &Spike, shared: &Shared, vu: usize, seed: u64, clock: Clock) {
    let mut target = shared.connect(&spike.kind);
    let mut rng = Rng::new(seed.wrapping_add(vu as u64 * 7919));
    let mut local = Second::default();
    shared.ready.wait();
    shared.go.wait();
    let start = *shared.start.get().expect("start set before go");
    let mut cur = 0usize;
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= clock.total {
            break;
        }
        let Some(tg) = target
            .as_mut()
            .filter(|_| (vu as u32) < spike.profile.vus_at(t))
        else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let (id, temp) = (rng.user(), rng.temperature());
        let t0 = Instant::now();
        let r = tg.call(id, temp);
        let us = t0.elapsed().as_micros() as u64;
        let done = clock.second_of(start.elapsed());
        if done != cur {
            flush(&shared.store, cur, &mut local);
            cur = done;
        }
        match r {
            Ok(()) => stats::record(&mut local.hist, us),
            Err(e) => {
                local.errors += 1;
                shared.note(e);
                // A broken connection is replaced; a refused request is not retried.
                if let Ok(t) = spike.kind.connect() {
                    target = Some(t);
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    flush(&shared.store, cur, &mut local);
}

/// The processes whose CPU time is measured: the ones given, and the load generator.
fn cpu_procs(spike: &Spike) -> Vec<(String, String)> {
    let mut procs: Vec<(String, String)> = spike
        .cpu
        .iter()
        .map(|(n, p)| (n.clone(), p.to_string()))
        .collect();
    procs.push(("load generator".into(), "self".into()));
    procs
}

/// Each process's CPU seconds so far (`None` for one that is gone).
fn cpu_now(procs: &[(String, String)]) -> Vec<Option<f64>> {
    procs.iter().map(|(_, p)| cpu_seconds(p)).collect()
}

/// The CPU seconds each process used between two readings (where both have it).
fn cpu_used(
    procs: &[(String, String)],
    before: &[Option<f64>],
    after: &[Option<f64>],
) -> Vec<(String, f64)> {
    procs
        .iter()
        .zip(before.iter().zip(after))
        .filter_map(|((n, _), (a, b))| Some((n.clone(), (*b)? - (*a)?)))
        .collect()
}

/// One sample at each second boundary of the load (after the one taken at its start).
fn sample_load(sampler: &mut Sampler, t0: Instant, clock: Clock, samples: &mut Vec<Sample>) {
    for k in 1..=clock.n_secs {
        let at = t0 + Duration::from_secs(k as u64);
        if let Some(d) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        samples.push(sampler.sample().0);
    }
}

/// After the load, until the write-behind backlog is empty: polled finely for the drain
/// time, sampled at each further second, then once more (the backlog at 0). Returns the
/// seconds from the end of the load, `-1` when `timeout` passed first.
fn sample_drain(
    sampler: &mut Sampler,
    timeout: Duration,
    t0: Instant,
    clock: Clock,
    samples: &mut Vec<Sample>,
) -> f64 {
    let load_end = t0 + Duration::from_secs_f64(clock.total);
    let deadline = Instant::now() + timeout;
    let mut next = t0 + Duration::from_secs(clock.n_secs as u64 + 1);
    let drain_s = loop {
        let (_, drained) = sampler.sample();
        if drained {
            break Instant::now().duration_since(load_end).as_secs_f64();
        }
        if Instant::now() >= deadline {
            break -1.0;
        }
        if Instant::now() >= next {
            samples.push(sampler.sample().0);
            next += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    samples.push(sampler.sample().0);
    drain_s
}

/// Each second's VU count: the largest the profile has during it.
fn set_vus(seconds: &mut [Second], profile: &Profile, clock: Clock) {
    for (i, s) in seconds.iter_mut().enumerate() {
        let a = profile.vus_at(i as f64);
        let b = profile.vus_at((i as f64 + 0.999).min(clock.total - 1e-9));
        s.vus = a.max(b);
    }
}

/// Runs the spike and returns the per-second data (nothing written).
pub(crate) fn run(spike: &Spike) -> Result<Outcome, String> {
    let clock = Clock::of(&spike.profile);
    let vus = spike.profile.max_vus() as usize;
    let shared = Shared::new(clock, vus);
    let mut sampler = Sampler::new(spike)?;
    let procs = cpu_procs(spike);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut samples = Vec::new();
    let (mut cpu0, mut cpu1, mut drain_s) = (Vec::new(), Vec::new(), None);
    std::thread::scope(|s| {
        for vu in 0..vus {
            let shared = &shared;
            s.spawn(move || virtual_user(spike, shared, vu, seed, clock));
        }
        shared.ready.wait();
        cpu0 = cpu_now(&procs);
        samples.push(sampler.sample().0);
        let t0 = Instant::now();
        shared.start.set(t0).expect("start set once");
        shared.go.wait();
        sample_load(&mut sampler, t0, clock, &mut samples);
        if spike.rgsync.is_some() {
            let timeout = spike.drain_timeout;
            drain_s = Some(sample_drain(&mut sampler, timeout, t0, clock, &mut samples));
        }
        cpu1 = cpu_now(&procs);
    });
    let into_inner = |m: Mutex<u32>| m.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut seconds = shared.store.into_inner().unwrap_or_else(|e| e.into_inner());
    set_vus(&mut seconds, &spike.profile, clock);
    Ok(Outcome {
        seconds,
        samples,
        first_error: shared
            .first_error
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        drain_s,
        connect_errors: into_inner(shared.connect_errors),
        db_counter: sampler.db_counter(),
        cpu: cpu_used(&procs, &cpu0, &cpu1),
    })
}

/// Rows the writer committed over the run (`RGSYNC.STATUS rows`, last − first sample).
fn writer_rows(samples: &[Sample]) -> String {
    match (
        samples.first().and_then(|s| s.wb_rows),
        samples.last().and_then(|s| s.wb_rows),
    ) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => String::new(),
    }
}

/// The run's `<scenario>.info`: `key=value` lines, passwords masked.
fn info_text(spike: &Spike, out: &Outcome, load: &Summary) -> String {
    let cpu: Vec<String> = out.cpu.iter().map(|(n, c)| format!("{n}:{c:.2}")).collect();
    let first_error = out.first_error.as_deref().unwrap_or_default();
    let info = [
        ("scenario", spike.scenario.clone()),
        ("target", format!("{:?}", spike.kind).replace('\n', " ")),
        ("profile", spike.profile.describe()),
        ("requests_ok", load.requests.to_string()),
        ("errors", load.errors.to_string()),
        ("connect_errors", out.connect_errors.to_string()),
        ("first_error", first_error.replace('\n', " ")),
        ("writer_rows_committed", writer_rows(&out.samples)),
        ("db_counter", out.db_counter.unwrap_or("").to_string()),
        ("cpu", cpu.join(";")),
        (
            "drain_s",
            out.drain_s.map_or(String::new(), |d| format!("{d:.2}")),
        ),
    ];
    info.iter()
        .map(|(k, v)| format!("{k}={}\n", mask(v)))
        .collect()
}

/// The line printed after a run.
fn one_line(name: &str, out: &Outcome, load: &Summary, peak: &Summary) -> String {
    format!(
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
            .as_ref()
            .map_or(String::new(), |e| format!("; first error: {e}"))
    )
}

/// Runs the spike and writes `<scenario>.csv`, `<scenario>.summary.csv`,
/// `<scenario>.info` into the output directory; prints a one-line summary.
pub(crate) fn run_and_write(spike: &Spike) -> Result<(), String> {
    std::fs::create_dir_all(&spike.out_dir).map_err(|e| e.to_string())?;
    let out = run(spike)?;
    let name = &spike.scenario;
    let file = |ext: &str| spike.out_dir.join(format!("{name}.{ext}"));
    let write =
        |ext: &str, text: String| std::fs::write(file(ext), text).map_err(|e| e.to_string());
    let rows = stats::rows(name, &out.seconds, &out.samples);
    stats::write_csv(&file("csv"), &rows).map_err(|e| e.to_string())?;
    let phase = |phase: &str, secs: (u64, u64)| {
        stats::summarize(name, phase, &out.seconds, &out.samples, secs, out.drain_s)
    };
    let load = phase("load", (0, out.seconds.len() as u64));
    let peak = phase("peak", spike.profile.peak_seconds());
    write(
        "summary.csv",
        format!(
            "{}\n{}\n{}\n",
            stats::SUMMARY_HEADER,
            load.to_csv(),
            peak.to_csv()
        ),
    )?;
    write("info", info_text(spike, &out, &load))?;
    println!("{}", one_line(name, &out, &load, &peak));
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

    use crate::http_app::{self, App};
    use crate::stages::Stage;

    /// The HTTP app on a free port (serving until the test process ends); its address.
    fn http_app() -> String {
        let port_file =
            std::env::temp_dir().join(format!("bench-spike-{}.port", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let app = App {
            listen: "127.0.0.1:0".into(),
            port_file: Some(port_file.clone()),
            odbc: String::new(),
            table: "t".into(),
            wb_redis: "redis://127.0.0.1:1/".into(),
            plain_redis: "redis://127.0.0.1:1/".into(),
        };
        std::thread::spawn(move || http_app::serve(app));
        for _ in 0..200 {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                if !port.is_empty() {
                    return format!("127.0.0.1:{port}");
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the http app did not start");
    }

    fn spike(kind: Kind) -> Spike {
        Spike {
            scenario: "test".into(),
            kind,
            // 2 VUs for the first second, ramping to 4 over the second one.
            profile: Profile {
                start: 2,
                stages: vec![
                    Stage {
                        secs: 1.0,
                        target: 2,
                    },
                    Stage {
                        secs: 1.0,
                        target: 4,
                    },
                ],
            },
            db: None,
            rgsync: None,
            drain_timeout: Duration::from_secs(1),
            out_dir: std::env::temp_dir().join(format!("bench-spike-{}", std::process::id())),
            cpu: Vec::new(),
        }
    }

    /// The load generator against the HTTP app's `/null`: per-second seconds with the
    /// profile's VUs and requests, a sample per second boundary, its own CPU; then the files.
    #[test]
    fn runs_a_profile_against_the_http_app() {
        let addr = http_app();
        let s = spike(Kind::Http {
            addr,
            path: "/null".into(),
        });
        let out = run(&s).unwrap();
        assert_eq!(out.seconds.len(), 2);
        assert_eq!(
            out.seconds.iter().map(|s| s.vus).collect::<Vec<_>>(),
            [2, 4]
        );
        for sec in &out.seconds {
            assert!(
                sec.hist.len() > 10,
                "requests in each second: {}",
                sec.hist.len()
            );
            assert_eq!(sec.errors, 0);
        }
        assert_eq!((out.connect_errors, out.first_error.as_deref()), (0, None));
        assert_eq!(
            out.samples.len(),
            3,
            "at the start and each second boundary"
        );
        assert_eq!(out.samples[0], Sample::default(), "nothing to sample");
        assert_eq!((out.drain_s, out.db_counter), (None, None));
        assert_eq!(out.cpu.len(), 1);
        assert_eq!(out.cpu[0].0, "load generator");

        run_and_write(&s).unwrap();
        let file = |ext: &str| s.out_dir.join(format!("test.{ext}"));
        let rows = stats::read_csv(&file("csv")).unwrap();
        assert_eq!(rows.len(), 2);
        let sums = stats::read_summaries(&file("summary.csv")).unwrap();
        assert_eq!(
            sums.iter().map(|s| s.phase.as_str()).collect::<Vec<_>>(),
            ["load", "peak"]
        );
        assert_eq!(
            sums[0].requests,
            rows.iter().map(|r| r.requests).sum::<u64>()
        );
        let info = std::fs::read_to_string(file("info")).unwrap();
        let keys: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "scenario",
                "target",
                "profile",
                "requests_ok",
                "errors",
                "connect_errors",
                "first_error",
                "writer_rows_committed",
                "db_counter",
                "cpu",
                "drain_s"
            ]
        );
        assert!(
            info.contains(&format!("requests_ok={}\n", sums[0].requests)),
            "{info}"
        );
        std::fs::remove_dir_all(&s.out_dir).unwrap();
    }

    /// A target that refuses connections: every VU counts a connection error and stays idle.
    #[test]
    fn counts_connection_errors() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        let out = run(&spike(Kind::Http {
            addr,
            path: "/null".into(),
        }))
        .unwrap();
        assert_eq!(out.connect_errors, 4);
        assert!(out.first_error.unwrap().starts_with("http 127.0.0.1:"));
        assert!(out
            .seconds
            .iter()
            .all(|s| s.hist.is_empty() && s.errors == 0));
    }

    #[test]
    fn cpu_accounting() {
        let procs = vec![
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        let used = cpu_used(&procs, &[Some(1.0), Some(2.0)], &[Some(1.5), None]);
        assert_eq!(used, vec![("a".to_string(), 0.5)]);
        let s = spike(Kind::Http {
            addr: String::new(),
            path: String::new(),
        });
        assert_eq!(
            cpu_procs(&s),
            vec![("load generator".to_string(), "self".to_string())]
        );
        assert!(cpu_now(&cpu_procs(&s))[0].is_some());
    }

    #[test]
    fn seconds_of_a_run() {
        let clock = Clock::of(
            &spike(Kind::Http {
                addr: String::new(),
                path: String::new(),
            })
            .profile,
        );
        assert_eq!((clock.total, clock.n_secs), (2.0, 2));
        assert_eq!(clock.second_of(Duration::from_millis(1500)), 1);
        assert_eq!(
            clock.second_of(Duration::from_secs(5)),
            1,
            "late completions count in the last second"
        );
        let mut local = Second::default();
        stats::record(&mut local.hist, 100);
        local.errors = 2;
        let store = Mutex::new(vec![Second::default(); 2]);
        flush(&store, 1, &mut local);
        flush(
            &store,
            9,
            &mut Second {
                errors: 1,
                ..Second::default()
            },
        );
        let store = store.into_inner().unwrap();
        assert_eq!((store[1].hist.len(), store[1].errors), (1, 2));
        assert!(local.hist.is_empty() && local.errors == 0);
        assert_eq!(writer_rows(&[]), "");
        let wb = |rows| Sample {
            wb_rows: Some(rows),
            ..Sample::default()
        };
        assert_eq!(writer_rows(&[wb(5), Sample::default(), wb(12)]), "7");
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("Driver={x};Uid=test;Pwd=test;Port=1"),
            "Driver={x};Uid=test;Pwd=***;Port=1"
        );
    }
}
