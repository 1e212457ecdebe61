//! Drain rate of the write-behind writer: `n` HSETs are pipelined into the Redis with the
//! job as fast as one connection can (the capture is synchronous, so the backlog builds up),
//! then the time until the writer has committed them all and the backlog is empty gives
//! rows/s. The writer, not the filling, is the bottleneck when the backlog peaks near `n`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::spike::rgsync_status;
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

/// Runs it and writes `key=value` lines to `out`.
pub(crate) fn run(d: &Drain) -> Result<(), String> {
    let mut con = redis::Client::open(d.redis.as_str())
        .and_then(|c| c.get_connection())
        .map_err(|e| format!("redis {}: {e}", d.redis))?;
    let rows0 = status_num(&mut con, &d.job, "rows")?;
    let mut rng = Rng::new(42);
    let t0 = Instant::now();
    let mut sent = 0;
    let mut peak_backlog = 0;
    while sent < d.n {
        let k = (d.n - sent).min(1000);
        let mut pipe = redis::pipe();
        for i in 0..k {
            // Distinct keys: every change is one row for the writer (no coalescing).
            pipe.cmd("HSET")
                .arg(format!("{}{}", d.prefix, 2_000_000 + sent + i))
                .arg("temperature")
                .arg(format!("{:.2}", rng.temperature()))
                .ignore();
        }
        pipe.query::<()>(&mut con).map_err(|e| e.to_string())?;
        sent += k;
    }
    let fill_s = t0.elapsed().as_secs_f64();
    let deadline = Instant::now() + d.timeout;
    let drained_at = loop {
        let st = rgsync_status(&mut con, &d.job)?;
        let backlog: u64 = st.get("backlog").and_then(|v| v.parse().ok()).unwrap_or(0);
        peak_backlog = peak_backlog.max(backlog);
        if backlog == 0 && st.get("state").map(String::as_str) == Some("idle") {
            break Some(t0.elapsed().as_secs_f64());
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rows = status_num(&mut con, &d.job, "rows")? - rows0;
    let lines = match drained_at {
        Some(t) => format!(
            "n={}\nfill_s={fill_s:.3}\ndrain_s={t:.3}\nwriter_rows={rows}\npeak_backlog_seen={peak_backlog}\nrows_per_s={:.1}\n",
            d.n,
            rows as f64 / t
        ),
        None => format!(
            "n={}\nfill_s={fill_s:.3}\ndrain_s=\nwriter_rows={rows}\npeak_backlog_seen={peak_backlog}\nrows_per_s=\nerror=not drained within {} s\n",
            d.n,
            d.timeout.as_secs()
        ),
    };
    std::fs::write(&d.out, &lines).map_err(|e| e.to_string())?;
    println!("drain: {}", lines.trim().replace('\n', ", "));
    Ok(())
}
