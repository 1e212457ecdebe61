//! Drain rate of the write-behind writer: `n` HSETs are pipelined into the Redis with the
//! job as fast as one connection can (the capture is synchronous, so the backlog builds up),
//! then the time until the writer has committed them all and the backlog is empty gives
//! rows/s. The writer, not the filling, is the bottleneck when the backlog peaks near `n`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::sampler::rgsync_status;
use crate::targets::Rng;

/// A drain measurement.
#[derive(Debug, Clone)]
pub(crate) struct Drain {
    /// The Redis with the write-behind job.
    pub(crate) redis: String,
    /// The job's name (`RGSYNC.STATUS <job>`).
    pub(crate) job: String,
    /// Key prefix the job captures.
    pub(crate) prefix: String,
    /// Changes written before the writer is timed.
    pub(crate) n: u64,
    /// How long the writer may take to empty the backlog.
    pub(crate) timeout: Duration,
    /// Where the `key=value` result goes.
    pub(crate) out: PathBuf,
}

fn status_num(con: &mut redis::Connection, job: &str, key: &str) -> Result<u64, String> {
    let st = rgsync_status(con, job)?;
    st.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("RGSYNC.STATUS {job}: no {key} in {st:?}"))
}

/// Pipelines `d.n` HSETs on distinct keys (every change is one row for the writer, no
/// coalescing), 1000 at a time.
fn fill(con: &mut redis::Connection, d: &Drain) -> Result<(), String> {
    let mut rng = Rng::new(42);
    let mut sent = 0;
    while sent < d.n {
        let k = (d.n - sent).min(1000);
        let mut pipe = redis::pipe();
        for i in 0..k {
            pipe.cmd("HSET")
                .arg(format!("{}{}", d.prefix, 2_000_000 + sent + i))
                .arg("temperature")
                .arg(format!("{:.2}", rng.temperature()))
                .ignore();
        }
        pipe.query::<()>(con).map_err(|e| e.to_string())?;
        sent += k;
    }
    Ok(())
}

/// Polls `RGSYNC.STATUS` until the backlog is empty and the writer idle: the seconds since
/// `t0` then (`None` after `d.timeout`), and the largest backlog seen.
fn wait_drained(
    con: &mut redis::Connection,
    d: &Drain,
    t0: Instant,
) -> Result<(Option<f64>, u64), String> {
    let deadline = Instant::now() + d.timeout;
    let mut peak_backlog = 0;
    loop {
        let st = rgsync_status(con, &d.job)?;
        let backlog: u64 = st.get("backlog").and_then(|v| v.parse().ok()).unwrap_or(0);
        peak_backlog = peak_backlog.max(backlog);
        if backlog == 0 && st.get("state").map(String::as_str) == Some("idle") {
            return Ok((Some(t0.elapsed().as_secs_f64()), peak_backlog));
        }
        if Instant::now() >= deadline {
            return Ok((None, peak_backlog));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What was measured, as `drain.info`'s `key=value` lines.
fn info_lines(
    d: &Drain,
    fill_s: f64,
    drained_at: Option<f64>,
    rows: u64,
    peak_backlog: u64,
) -> String {
    let head = format!("n={}\nfill_s={fill_s:.3}\n", d.n);
    match drained_at {
        Some(t) => format!(
            "{head}drain_s={t:.3}\nwriter_rows={rows}\npeak_backlog_seen={peak_backlog}\nrows_per_s={:.1}\n",
            rows as f64 / t
        ),
        None => format!(
            "{head}drain_s=\nwriter_rows={rows}\npeak_backlog_seen={peak_backlog}\nrows_per_s=\nerror=not drained within {} s\n",
            d.timeout.as_secs()
        ),
    }
}

/// Runs it and writes `key=value` lines to `out`.
pub(crate) fn run(d: &Drain) -> Result<(), String> {
    let mut con = redis::Client::open(d.redis.as_str())
        .and_then(|c| c.get_connection())
        .map_err(|e| format!("redis {}: {e}", d.redis))?;
    let rows0 = status_num(&mut con, &d.job, "rows")?;
    let t0 = Instant::now();
    fill(&mut con, d)?;
    let fill_s = t0.elapsed().as_secs_f64();
    let (drained_at, peak_backlog) = wait_drained(&mut con, d, t0)?;
    let rows = status_num(&mut con, &d.job, "rows")? - rows0;
    let lines = info_lines(d, fill_s, drained_at, rows, peak_backlog);
    std::fs::write(&d.out, &lines).map_err(|e| e.to_string())?;
    println!("drain: {}", lines.trim().replace('\n', ", "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_a_drain() {
        let d = Drain {
            redis: String::new(),
            job: "bench".into(),
            prefix: "user:".into(),
            n: 1000,
            timeout: Duration::from_secs(30),
            out: PathBuf::new(),
        };
        assert_eq!(
            info_lines(&d, 0.25, Some(2.0), 1000, 900),
            "n=1000\nfill_s=0.250\ndrain_s=2.000\nwriter_rows=1000\npeak_backlog_seen=900\nrows_per_s=500.0\n"
        );
        let timed_out = info_lines(&d, 0.25, None, 10, 990);
        assert!(
            timed_out.ends_with("rows_per_s=\nerror=not drained within 30 s\n"),
            "{timed_out}"
        );
        assert!(
            timed_out.contains("\ndrain_s=\nwriter_rows=10\n"),
            "{timed_out}"
        );
    }
}
