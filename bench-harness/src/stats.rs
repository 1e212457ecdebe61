//! Latency histograms per second (HdrHistogram, microseconds, 3 significant digits), the
//! per-second CSV rows and the per-phase summaries computed by merging histograms (never
//! by averaging per-second quantiles).

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;

/// Highest recordable latency: 60 s in microseconds (larger values are clamped).
const MAX_US: u64 = 60_000_000;

/// A fresh latency histogram (µs).
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Records `us` (clamped to the histogram's range).
pub(crate) fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, MAX_US));
}

/// What happened in one second of a run.
#[derive(Debug, Clone)]
pub(crate) struct Second {
    /// Latencies of the requests completed in this second (µs).
    pub(crate) hist: Histogram<u64>,
    /// Failed requests.
    pub(crate) errors: u64,
    /// Active VUs (largest seen in the second).
    pub(crate) vus: u32,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            hist: histogram(),
            errors: 0,
            vus: 0,
        }
    }
}

/// Server-side counters sampled at a second boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// MariaDB rows changed so far in the target table (or server-wide handler writes).
    pub(crate) db_rows: Option<u64>,
    /// Write-behind stream length (`RGSYNC.STATUS backlog`).
    pub(crate) backlog: Option<u64>,
    /// Age of the oldest unapplied change (`RGSYNC.STATUS lag_ms`).
    pub(crate) lag_ms: Option<u64>,
    /// Rows the writer committed so far (`RGSYNC.STATUS rows`).
    pub(crate) wb_rows: Option<u64>,
}

/// One CSV row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) second: u64,
    pub(crate) vus: u32,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) db_rows_per_s: Option<f64>,
    pub(crate) wb_rows_per_s: Option<f64>,
    pub(crate) backlog: Option<u64>,
    pub(crate) lag_ms: Option<u64>,
}

/// The CSV header.
pub(crate) const HEADER: &str = "scenario,second,vus,requests,errors,mean_ms,p50_ms,p95_ms,p99_ms,max_ms,db_rows_per_s,wb_rows_per_s,backlog,lag_ms";

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or(String::new(), |v| v.to_string())
}

fn delta(a: Option<u64>, b: Option<u64>) -> Option<f64> {
    Some(b?.saturating_sub(a?) as f64)
}

/// Builds the rows of a run: `seconds[i]` is second i; `samples[i]` was taken at its start
/// (`samples` has one more entry than there are seconds to report).
pub(crate) fn rows(scenario: &str, seconds: &[Second], samples: &[Sample]) -> Vec<Row> {
    let n = seconds.len().max(samples.len().saturating_sub(1));
    (0..n)
        .map(|i| {
            let empty = Second::default();
            let s = seconds.get(i).unwrap_or(&empty);
            let h = &s.hist;
            let count = h.len();
            let q = |p: f64| {
                if count == 0 {
                    0.0
                } else {
                    ms(h.value_at_quantile(p))
                }
            };
            let a = samples.get(i).copied().unwrap_or_default();
            let b = samples.get(i + 1).copied().unwrap_or_default();
            Row {
                scenario: scenario.to_string(),
                second: i as u64,
                vus: s.vus,
                requests: count,
                errors: s.errors,
                mean_ms: if count == 0 {
                    0.0
                } else {
                    (h.mean()).round() / 1000.0
                },
                p50_ms: q(0.50),
                p95_ms: q(0.95),
                p99_ms: q(0.99),
                max_ms: if count == 0 { 0.0 } else { ms(h.max()) },
                db_rows_per_s: delta(a.db_rows, b.db_rows),
                wb_rows_per_s: delta(a.wb_rows, b.wb_rows),
                backlog: b.backlog,
                lag_ms: b.lag_ms,
            }
        })
        .collect()
}

impl Row {
    /// The row as CSV.
    pub(crate) fn to_csv(&self) -> String {
        format!(
            "{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{}",
            self.scenario,
            self.second,
            self.vus,
            self.requests,
            self.errors,
            self.mean_ms,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            opt(&self.db_rows_per_s),
            opt(&self.wb_rows_per_s),
            opt(&self.backlog),
            opt(&self.lag_ms)
        )
    }

    /// Parses a CSV line written by [`Row::to_csv`].
    pub(crate) fn from_csv(line: &str) -> Result<Row, String> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if f.len() != 14 {
            return Err(format!("want 14 fields, got {}: {line}", f.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            f[i].parse::<f64>()
                .map_err(|_| format!("field {i} '{}' is not a number", f[i]))
        };
        let int = |i: usize| -> Result<u64, String> {
            f[i].parse::<u64>()
                .map_err(|_| format!("field {i} '{}' is not an integer", f[i]))
        };
        let onum = |i: usize| -> Result<Option<f64>, String> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        let oint = |i: usize| -> Result<Option<u64>, String> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                int(i).map(Some)
            }
        };
        Ok(Row {
            scenario: f[0].to_string(),
            second: int(1)?,
            vus: int(2)? as u32,
            requests: int(3)?,
            errors: int(4)?,
            mean_ms: num(5)?,
            p50_ms: num(6)?,
            p95_ms: num(7)?,
            p99_ms: num(8)?,
            max_ms: num(9)?,
            db_rows_per_s: onum(10)?,
            wb_rows_per_s: onum(11)?,
            backlog: oint(12)?,
            lag_ms: oint(13)?,
        })
    }
}

/// Writes rows (with the header) to `path`.
pub(crate) fn write_csv(path: &Path, rows: &[Row]) -> std::io::Result<()> {
    let mut out = String::from(HEADER);
    out.push('\n');
    for r in rows {
        out.push_str(&r.to_csv());
        out.push('\n');
    }
    std::fs::write(path, out)
}

/// Reads the rows of a CSV written by [`write_csv`] (several files may be concatenated:
/// repeated headers are skipped).
pub(crate) fn read_csv(path: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("scenario,"))
        .map(Row::from_csv)
        .collect()
}

/// A phase of a run, summarised from the merged histogram of its seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) scenario: String,
    /// `load` (every second with load), `peak` (the seconds the peak VU count is held).
    pub(crate) phase: String,
    pub(crate) seconds: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) rps: f64,
    pub(crate) mean_ms: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Database rows/s over the phase (server counter), if sampled.
    pub(crate) db_rows_per_s: Option<f64>,
    /// Extra seconds after the load until the write-behind backlog was empty (write-behind
    /// runs only; `-1` if it did not drain before the timeout).
    pub(crate) drain_s: Option<f64>,
}

/// The summary CSV header.
pub(crate) const SUMMARY_HEADER: &str =
    "scenario,phase,seconds,requests,errors,rps,mean_ms,p50_ms,p95_ms,p99_ms,max_ms,db_rows_per_s,drain_s";

/// Summarises the seconds `[a, b)` of a run.
pub(crate) fn summarize(
    scenario: &str,
    phase: &str,
    seconds: &[Second],
    samples: &[Sample],
    (a, b): (u64, u64),
    drain_s: Option<f64>,
) -> Summary {
    let b = b.min(seconds.len() as u64);
    let a = a.min(b);
    let mut h = histogram();
    let mut errors = 0;
    for s in &seconds[a as usize..b as usize] {
        h.add(&s.hist).expect("same bounds");
        errors += s.errors;
    }
    let secs = b - a;
    let count = h.len();
    let q = |p: f64| {
        if count == 0 {
            0.0
        } else {
            ms(h.value_at_quantile(p))
        }
    };
    let db = match (
        samples.get(a as usize).and_then(|s| s.db_rows),
        samples.get(b as usize).and_then(|s| s.db_rows),
    ) {
        (Some(x), Some(y)) if secs > 0 => Some(y.saturating_sub(x) as f64 / secs as f64),
        _ => None,
    };
    Summary {
        scenario: scenario.to_string(),
        phase: phase.to_string(),
        seconds: secs,
        requests: count,
        errors,
        rps: if secs == 0 {
            0.0
        } else {
            count as f64 / secs as f64
        },
        mean_ms: if count == 0 { 0.0 } else { h.mean() / 1000.0 },
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        max_ms: if count == 0 { 0.0 } else { ms(h.max()) },
        db_rows_per_s: db,
        drain_s,
    }
}

impl Summary {
    /// The summary as CSV.
    pub(crate) fn to_csv(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "{},{},{},{},{},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{},{}",
            self.scenario,
            self.phase,
            self.seconds,
            self.requests,
            self.errors,
            self.rps,
            self.mean_ms,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            self.db_rows_per_s
                .map_or(String::new(), |v| format!("{v:.1}")),
            self.drain_s.map_or(String::new(), |v| format!("{v:.1}")),
        );
        s
    }

    /// Parses a line written by [`Summary::to_csv`].
    pub(crate) fn from_csv(line: &str) -> Result<Summary, String> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if f.len() != 13 {
            return Err(format!("want 13 fields, got {}: {line}", f.len()));
        }
        let num = |i: usize| -> Result<f64, String> {
            f[i].parse::<f64>()
                .map_err(|_| format!("field {i} '{}' is not a number", f[i]))
        };
        let onum = |i: usize| -> Result<Option<f64>, String> {
            if f[i].is_empty() {
                Ok(None)
            } else {
                num(i).map(Some)
            }
        };
        Ok(Summary {
            scenario: f[0].to_string(),
            phase: f[1].to_string(),
            seconds: num(2)? as u64,
            requests: num(3)? as u64,
            errors: num(4)? as u64,
            rps: num(5)?,
            mean_ms: num(6)?,
            p50_ms: num(7)?,
            p95_ms: num(8)?,
            p99_ms: num(9)?,
            max_ms: num(10)?,
            db_rows_per_s: onum(11)?,
            drain_s: onum(12)?,
        })
    }
}

/// Reads every summary line of `path` (headers skipped).
pub(crate) fn read_summaries(path: &Path) -> Result<Vec<Summary>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("scenario,"))
        .map(Summary::from_csv)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(lat_us: &[u64], vus: u32) -> Second {
        let mut s = Second {
            vus,
            ..Second::default()
        };
        for &l in lat_us {
            record(&mut s.hist, l);
        }
        s
    }

    #[test]
    fn rows_quantiles_and_rates() {
        let lat: Vec<u64> = (1..=100).map(|i| i * 1000).collect(); // 1..100 ms
        let seconds = vec![second(&lat, 4), second(&[], 0)];
        let samples = vec![
            Sample {
                db_rows: Some(10),
                wb_rows: Some(0),
                ..Sample::default()
            },
            Sample {
                db_rows: Some(110),
                backlog: Some(7),
                lag_ms: Some(30),
                wb_rows: Some(90),
            },
            Sample {
                db_rows: Some(120),
                backlog: Some(0),
                lag_ms: Some(0),
                wb_rows: Some(97),
            },
        ];
        let r = rows("wb", &seconds, &samples);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].requests, 100);
        assert!((r[0].p50_ms - 50.0).abs() < 0.1, "{}", r[0].p50_ms);
        assert!((r[0].p95_ms - 95.0).abs() < 0.1, "{}", r[0].p95_ms);
        assert!((r[0].p99_ms - 99.0).abs() < 0.1, "{}", r[0].p99_ms);
        assert!((r[0].mean_ms - 50.5).abs() < 0.1, "{}", r[0].mean_ms);
        assert_eq!(r[0].db_rows_per_s, Some(100.0));
        assert_eq!(r[0].wb_rows_per_s, Some(90.0));
        assert_eq!(r[0].backlog, Some(7));
        assert_eq!(r[1].requests, 0);
        assert_eq!(r[1].p95_ms, 0.0);
        assert_eq!(r[1].backlog, Some(0));
        // CSV round trip.
        for row in &r {
            assert_eq!(&Row::from_csv(&row.to_csv()).unwrap(), row);
        }
        let dir = std::env::temp_dir().join(format!("bench-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.csv");
        write_csv(&p, &r).unwrap();
        assert_eq!(read_csv(&p).unwrap(), r);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Row::from_csv("a,b").is_err());
    }

    #[test]
    fn summary_merges_histograms_not_quantiles() {
        // Second 0: 99 fast requests; second 1: one slow one. The p99 of the merged phase
        // is fast; averaging the per-second p99s would say ~500 ms.
        let fast = vec![1000u64; 99];
        let seconds = vec![second(&fast, 1), second(&[1_000_000], 1)];
        let samples = vec![
            Sample {
                db_rows: Some(0),
                ..Sample::default()
            },
            Sample::default(),
            Sample {
                db_rows: Some(200),
                ..Sample::default()
            },
        ];
        let s = summarize("x", "load", &seconds, &samples, (0, 2), None);
        assert_eq!(s.requests, 100);
        assert_eq!(s.rps, 50.0);
        assert!((s.p99_ms - 1.0).abs() < 0.01, "{}", s.p99_ms);
        assert!(s.max_ms > 999.0);
        assert_eq!(s.db_rows_per_s, Some(100.0));
        let back = Summary::from_csv(&s.to_csv()).unwrap();
        assert_eq!(back.requests, 100);
        assert_eq!(back.db_rows_per_s, Some(100.0));
        assert_eq!(back.drain_s, None);
        // Out-of-range phases are clamped.
        let e = summarize("x", "peak", &seconds, &samples, (5, 9), Some(1.5));
        assert_eq!(e.requests, 0);
        assert_eq!(e.seconds, 0);
    }
}
