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
    /// The run's scenario (`proto-wb`, ...).
    pub(crate) scenario: String,
    /// Seconds since the run started.
    pub(crate) second: u64,
    /// Active VUs.
    pub(crate) vus: u32,
    /// Requests completed in the second.
    pub(crate) requests: u64,
    /// Requests failed in the second.
    pub(crate) errors: u64,
    /// Latencies of the second's requests (the mean rounded to the µs).
    pub(crate) latency: Latency,
    /// MariaDB rows changed in the second, if sampled.
    pub(crate) db_rows_per_s: Option<f64>,
    /// Rows the write-behind writer committed in the second, if sampled.
    pub(crate) wb_rows_per_s: Option<f64>,
    /// Write-behind backlog at the end of the second, if sampled.
    pub(crate) backlog: Option<u64>,
    /// Age of the oldest unapplied change at the end of the second, if sampled.
    pub(crate) lag_ms: Option<u64>,
}

/// The CSV header.
pub(crate) const HEADER: &str = "scenario,second,vus,requests,errors,mean_ms,p50_ms,p95_ms,p99_ms,max_ms,db_rows_per_s,wb_rows_per_s,backlog,lag_ms";

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latencies of a set of requests (ms), read from their histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Latency {
    /// The mean.
    pub(crate) mean_ms: f64,
    /// The median.
    pub(crate) p50_ms: f64,
    /// The 95th percentile.
    pub(crate) p95_ms: f64,
    /// The 99th percentile.
    pub(crate) p99_ms: f64,
    /// The slowest.
    pub(crate) max_ms: f64,
}

impl Latency {
    /// The latencies `h` holds; all 0 when it holds none.
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |p: f64| ms(h.value_at_quantile(p));
        Latency {
            mean_ms: h.mean() / 1000.0,
            p50_ms: q(0.5),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: ms(h.max()),
        }
    }

    /// Five CSV fields: mean, p50, p95, p99, max (µs precision).
    fn to_csv(self) -> String {
        format!(
            "{:.3},{:.3},{:.3},{:.3},{:.3}",
            self.mean_ms, self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        )
    }

    /// The five fields [`Latency::to_csv`] wrote, from field `at` on.
    fn from_csv(f: &Fields<'_>, at: usize) -> Result<Latency, String> {
        Ok(Latency {
            mean_ms: f.num(at)?,
            p50_ms: f.num(at + 1)?,
            p95_ms: f.num(at + 2)?,
            p99_ms: f.num(at + 3)?,
            max_ms: f.num(at + 4)?,
        })
    }
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
            let a = samples.get(i).copied().unwrap_or_default();
            let b = samples.get(i + 1).copied().unwrap_or_default();
            Row {
                scenario: scenario.to_string(),
                second: i as u64,
                vus: s.vus,
                requests: s.hist.len(),
                errors: s.errors,
                latency: Latency {
                    mean_ms: s.hist.mean().round() / 1000.0,
                    ..Latency::of(&s.hist)
                },
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
            "{},{},{},{},{},{},{},{},{},{}",
            self.scenario,
            self.second,
            self.vus,
            self.requests,
            self.errors,
            self.latency.to_csv(),
            opt(&self.db_rows_per_s),
            opt(&self.wb_rows_per_s),
            opt(&self.backlog),
            opt(&self.lag_ms)
        )
    }

    /// Parses a CSV line written by [`Row::to_csv`].
    pub(crate) fn from_csv(line: &str) -> Result<Row, String> {
        let f = Fields::split(line, 14)?;
        Ok(Row {
            scenario: f.text(0),
            second: f.int(1)?,
            vus: f.int(2)? as u32,
            requests: f.int(3)?,
            errors: f.int(4)?,
            latency: Latency::from_csv(&f, 5)?,
            db_rows_per_s: f.opt(10, Fields::num)?,
            wb_rows_per_s: f.opt(11, Fields::num)?,
            backlog: f.opt(12, Fields::int)?,
            lag_ms: f.opt(13, Fields::int)?,
        })
    }
}

/// The comma-separated fields of one CSV line, parsed by position.
struct Fields<'a> {
    f: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    /// Splits `line`, which must have exactly `n` fields.
    fn split(line: &'a str, n: usize) -> Result<Fields<'a>, String> {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if f.len() != n {
            return Err(format!("want {n} fields, got {}: {line}", f.len()));
        }
        Ok(Fields { f })
    }

    fn text(&self, i: usize) -> String {
        self.f[i].to_string()
    }

    fn num(&self, i: usize) -> Result<f64, String> {
        self.f[i]
            .parse::<f64>()
            .map_err(|_| format!("field {i} '{}' is not a number", self.f[i]))
    }

    fn int(&self, i: usize) -> Result<u64, String> {
        self.f[i]
            .parse::<u64>()
            .map_err(|_| format!("field {i} '{}' is not an integer", self.f[i]))
    }

    /// An optional field: `None` when empty, else parsed with `parse`.
    fn opt<T>(
        &self,
        i: usize,
        parse: fn(&Self, usize) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        if self.f[i].is_empty() {
            Ok(None)
        } else {
            parse(self, i).map(Some)
        }
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

/// Parses every line of `path` but empty ones and headers (`scenario,...`: several files
/// may be concatenated).
fn read_lines<T>(path: &Path, parse: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("scenario,"))
        .map(parse)
        .collect()
}

/// Reads the rows of a CSV written by [`write_csv`] (several files may be concatenated:
/// repeated headers are skipped).
pub(crate) fn read_csv(path: &Path) -> Result<Vec<Row>, String> {
    read_lines(path, Row::from_csv)
}

/// A phase of a run, summarised from the merged histogram of its seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// The run's scenario.
    pub(crate) scenario: String,
    /// `load` (every second with load), `peak` (the seconds the peak VU count is held).
    pub(crate) phase: String,
    /// Length of the phase.
    pub(crate) seconds: u64,
    /// Requests completed in the phase.
    pub(crate) requests: u64,
    /// Requests failed in the phase.
    pub(crate) errors: u64,
    /// Requests completed per second.
    pub(crate) rps: f64,
    /// Latencies of the phase's merged histogram.
    pub(crate) latency: Latency,
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
        latency: Latency::of(&h),
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
            "{},{},{},{},{},{:.1},{},{},{}",
            self.scenario,
            self.phase,
            self.seconds,
            self.requests,
            self.errors,
            self.rps,
            self.latency.to_csv(),
            self.db_rows_per_s
                .map_or(String::new(), |v| format!("{v:.1}")),
            self.drain_s.map_or(String::new(), |v| format!("{v:.1}")),
        );
        s
    }

    /// Parses a line written by [`Summary::to_csv`].
    pub(crate) fn from_csv(line: &str) -> Result<Summary, String> {
        let f = Fields::split(line, 13)?;
        Ok(Summary {
            scenario: f.text(0),
            phase: f.text(1),
            seconds: f.num(2)? as u64,
            requests: f.num(3)? as u64,
            errors: f.num(4)? as u64,
            rps: f.num(5)?,
            latency: Latency::from_csv(&f, 6)?,
            db_rows_per_s: f.opt(11, Fields::num)?,
            drain_s: f.opt(12, Fields::num)?,
        })
    }
}

/// Reads every summary line of `path` (headers skipped).
pub(crate) fn read_summaries(path: &Path) -> Result<Vec<Summary>, String> {
    read_lines(path, Summary::from_csv)
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
        assert!(
            (r[0].latency.p50_ms - 50.0).abs() < 0.1,
            "{}",
            r[0].latency.p50_ms
        );
        assert!(
            (r[0].latency.p95_ms - 95.0).abs() < 0.1,
            "{}",
            r[0].latency.p95_ms
        );
        assert!(
            (r[0].latency.p99_ms - 99.0).abs() < 0.1,
            "{}",
            r[0].latency.p99_ms
        );
        assert!(
            (r[0].latency.mean_ms - 50.5).abs() < 0.1,
            "{}",
            r[0].latency.mean_ms
        );
        assert_eq!(r[0].db_rows_per_s, Some(100.0));
        assert_eq!(r[0].wb_rows_per_s, Some(90.0));
        assert_eq!(r[0].backlog, Some(7));
        assert_eq!(r[1].requests, 0);
        assert_eq!(r[1].latency.p95_ms, 0.0);
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
    fn csv_lines_as_written() {
        for line in [
            "proto-wb,1,4,13837,0,0.234,0.161,0.572,1.662,11.087,9373,9284,4570,337",
            "http-db,3,48,900,2,52.000,40.100,99.000,120.500,300.000,,,,",
        ] {
            assert_eq!(Row::from_csv(line).unwrap().to_csv(), line);
        }
        let row = Row::from_csv("x,1,4,13837,0,0.234,0.161,0.572,1.662,11.087,,,7,").unwrap();
        assert_eq!(row.latency.p99_ms, 1.662);
        assert_eq!(
            (row.db_rows_per_s, row.backlog, row.lag_ms),
            (None, Some(7), None)
        );
        let line = "proto-wb,peak,4,100707,0,25176.8,1.906,1.591,4.059,8.455,28.799,4848.2,6.0";
        let peak = Summary::from_csv(line).unwrap();
        assert_eq!(peak.to_csv(), line);
        assert_eq!((peak.latency.mean_ms, peak.latency.p95_ms), (1.906, 4.059));
        assert_eq!(peak.drain_s, Some(6.0));
        assert!(Summary::from_csv("a,b,1").is_err());
        let bad = Row::from_csv("x,1,4,n,0,1,1,1,1,1,,,,").unwrap_err();
        assert_eq!(bad, "field 3 'n' is not an integer");
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
        assert!(
            (s.latency.p99_ms - 1.0).abs() < 0.01,
            "{}",
            s.latency.p99_ms
        );
        assert!(s.latency.max_ms > 999.0);
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
