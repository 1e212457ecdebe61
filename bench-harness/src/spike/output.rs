//! A run's files: `<scenario>.csv` (per second), `.summary.csv` (load and peak phases),
//! `.info` (`key=value`, passwords masked), and the line printed after it.

use super::{run, Outcome, Spike};
use crate::stats::{self, Sample, Summary};

/// Rows the writer committed over the run (`RGSYNC.STATUS rows`, last − first sample).
pub(super) fn writer_rows(samples: &[Sample]) -> String {
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
    fn masks_passwords() {
        assert_eq!(
            mask("Driver={x};Uid=test;Pwd=test;Port=1"),
            "Driver={x};Uid=test;Pwd=***;Port=1"
        );
    }
}
