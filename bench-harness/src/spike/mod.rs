//! The closed-loop load generator: one OS thread per virtual user (no think time), active
//! while the profile says so; per-second latency histograms merged from per-VU histograms;
//! a sampler taking the database and write-behind counters at every second boundary, and
//! after the load, until the write-behind backlog is empty.
//!
//! [`vu`] runs the virtual users, [`cpu`] measures the processes, [`output`] writes the files.

mod cpu;
mod output;
mod vu;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) use cpu::parse_pids;
pub(crate) use output::run_and_write;

use crate::sampler::Sampler;
use crate::stages::Profile;
use crate::stats::{Sample, Second};
use crate::targets::{self, Target};
use cpu::{cpu_now, cpu_procs, cpu_used};
use vu::{virtual_user, Clock, Shared};

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
    let mut sampler = Sampler::new(&spike.db, &spike.rgsync)?;
    let procs = cpu_procs(&spike.cpu);
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
    let (mut seconds, first_error, connect_errors) = shared.into_parts();
    set_vus(&mut seconds, &spike.profile, clock);
    Ok(Outcome {
        seconds,
        samples,
        first_error,
        drain_s,
        connect_errors,
        db_counter: sampler.db_counter(),
        cpu: cpu_used(&procs, &cpu0, &cpu1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_app::{self, App};
    use crate::stages::Stage;
    use crate::stats;

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
}
