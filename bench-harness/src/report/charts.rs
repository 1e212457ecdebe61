//! The charts of one level (protocol, http): requests/s with the VU count, p95 latency, and
//! MariaDB rows/s with the write-behind backlog, each alone and the three side by side,
//! drawn with [`crate::chart`].

use std::path::Path;

use plotters::style::RGBColor;

use super::inputs::Run;
use crate::chart::{self, Panel, Series};
use crate::stats::Row;

/// The color of the secondary lines (VUs, backlog).
const GREY: RGBColor = RGBColor(120, 120, 120);

/// A run's line: `value` of each second that has one, at the middle of the second.
fn series(run: &Run, value: impl Fn(&Row) -> Option<f64>, label: &str, faint: bool) -> Series {
    Series {
        label: label.to_string(),
        color: if faint { GREY } else { run.sc.color },
        points: run
            .rows
            .iter()
            .filter_map(|r| value(r).map(|v| (r.second as f64 + 0.5, v)))
            .collect(),
        faint,
    }
}

/// [`series`] over the seconds of the load only (the drain after it left out).
fn load_series(run: &Run, value: impl Fn(&Row) -> Option<f64>, label: &str, faint: bool) -> Series {
    let end = run.load.as_ref().map_or(u64::MAX, |s| s.seconds);
    series(
        run,
        |row| if row.second < end { value(row) } else { None },
        label,
        faint,
    )
}

/// Requests/s of each run, with the first run's VU count on the right axis.
fn throughput_panel(level: &str, runs: &[&Run]) -> Panel {
    let requests = |r: &&Run| load_series(r, |row| Some(row.requests as f64), r.sc.label, false);
    let vus = |r: &&Run| load_series(r, |row| Some(f64::from(row.vus)), "VUs", true);
    Panel::new(
        format!("{level}: requests/s"),
        "requests/s",
        runs.iter().map(requests).collect(),
    )
    .right_axis("virtual users", runs.first().map(vus).into_iter().collect())
}

/// p95 latency of each run, over the seconds with requests.
fn p95_panel(level: &str, runs: &[&Run]) -> Panel {
    let p95 = |row: &Row| (row.requests > 0).then_some(row.latency.p95_ms);
    Panel::new(
        format!("{level}: p95 latency"),
        "p95 (ms)",
        runs.iter()
            .map(|r| load_series(r, p95, r.sc.label, false))
            .collect(),
    )
}

/// MariaDB rows/s of the runs that write to it, with the write-behind backlog on the right
/// axis (load and drain).
fn rows_backlog_panel(level: &str, runs: &[&Run]) -> Panel {
    let db_runs: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| !r.sc.id.ends_with("redis"))
        .collect();
    let rows = |r: &&Run| {
        let label = format!("{} rows/s", r.sc.label);
        series(r, |row| row.db_rows_per_s, &label, false)
    };
    let backlog = |r: &&Run| {
        let changes = |row: &Row| row.backlog.map(|b| b as f64);
        series(r, changes, "write-behind backlog", true)
    };
    let sampled = |r: &&&Run| r.rows.iter().any(|row| row.backlog.is_some());
    Panel::new(
        format!("{level}: MariaDB rows/s and write-behind backlog"),
        "MariaDB rows written/s",
        db_runs.iter().map(rows).collect(),
    )
    .right_axis(
        "backlog (changes)",
        db_runs.iter().filter(sampled).map(backlog).collect(),
    )
    .legend_left()
}

/// Draws the charts of one level into `out`; returns the image file names, the side-by-side
/// one first (none for no runs).
pub(super) fn draw_level(out: &Path, level: &str, runs: &[&Run]) -> Result<Vec<String>, String> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let panels = [
        ("throughput", throughput_panel(level, runs)),
        ("p95", p95_panel(level, runs)),
        ("db-rows-backlog", rows_backlog_panel(level, runs)),
    ];
    let mut files = vec![format!("{level}-side-by-side.png")];
    for (name, panel) in &panels {
        let f = format!("{level}-{name}.png");
        chart::draw(&out.join(&f), std::slice::from_ref(panel), 900, 500)?;
        files.push(f);
    }
    let [a, b, c] = panels.map(|(_, p)| p);
    chart::draw(&out.join(&files[0]), &[a, b, c], 700, 460)?;
    Ok(files)
}

/// The report's lines for a level's charts: the side-by-side image, links to the others.
pub(super) fn chart_links(level: &str, files: &[String]) -> String {
    let Some((side, single)) = files.split_first() else {
        return String::new();
    };
    let links: Vec<String> = single.iter().map(|f| format!("[{f}]({f})")).collect();
    format!(
        "![{level} side by side]({side})\n\nSingle charts: {}\n\n",
        links.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::inputs::SCENARIOS;
    use crate::stats::Summary;

    fn run(id: &str, load_s: Option<u64>) -> Run {
        let rows = (0..6)
            .map(|s| {
                let line = format!(
                    "{id},{s},{},{},0,1,1,{}.5,1,1,{},,{},",
                    s + 1,
                    if s == 2 { 0 } else { 100 * s },
                    s,
                    10 * s,
                    if id.ends_with("wb") {
                        (s * 3).to_string()
                    } else {
                        String::new()
                    },
                );
                Row::from_csv(&line).unwrap()
            })
            .collect();
        Run {
            sc: SCENARIOS.iter().find(|s| s.id == id).unwrap(),
            rows,
            load: load_s
                .map(|n| Summary::from_csv(&format!("{id},load,{n},1,0,1,1,1,1,1,1,,")).unwrap()),
            peak: None,
            info: BTreeMap::new(),
        }
    }

    #[test]
    fn panels_of_a_level() {
        let (db, wb, plain) = (
            run("proto-db", Some(4)),
            run("proto-wb", Some(5)),
            run("proto-redis", None),
        );
        let runs = [&db, &wb, &plain];
        let t = throughput_panel("protocol", &runs);
        assert_eq!(t.title, "protocol: requests/s");
        assert_eq!(t.series.len(), 3);
        // The load's seconds only, at mid-second; no load summary: every second.
        assert_eq!(
            t.series[0].points,
            vec![(0.5, 0.0), (1.5, 100.0), (2.5, 0.0), (3.5, 300.0)]
        );
        assert_eq!(t.series[2].points.len(), 6);
        assert_eq!(t.series[0].label, "direct MariaDB upsert");
        assert_eq!(t.series2.len(), 1);
        assert_eq!(
            (
                t.series2[0].label.as_str(),
                t.series2[0].faint,
                t.series2[0].color
            ),
            ("VUs", true, GREY)
        );
        assert_eq!(t.series2[0].points[3], (3.5, 4.0));
        // p95: seconds without requests are gaps, not zeros.
        let p = p95_panel("protocol", &runs);
        assert_eq!(p.series[1].points, vec![(1.5, 1.5), (3.5, 3.5), (4.5, 4.5)]);
        assert!(p.series2.is_empty() && p.y2_desc.is_none());
        // Rows/backlog: the runs writing to MariaDB; the backlog where it was sampled.
        let b = rows_backlog_panel("protocol", &runs);
        assert_eq!(b.series.len(), 2);
        assert_eq!(b.series[1].label, "Redis + write-behind rows/s");
        assert_eq!(b.series[1].points.len(), 6, "rows/s over load and drain");
        assert_eq!(b.series2.len(), 1);
        assert_eq!(b.series2[0].points[5], (5.5, 15.0));
        assert!(b.legend_left);
    }

    #[test]
    fn links() {
        let files: Vec<String> = ["h-side-by-side.png", "h-p95.png", "h-x.png"]
            .map(String::from)
            .into();
        assert_eq!(
            chart_links("http", &files),
            "![http side by side](h-side-by-side.png)\n\nSingle charts: [h-p95.png](h-p95.png), [h-x.png](h-x.png)\n\n"
        );
        assert_eq!(chart_links("http", &[]), "");
    }

    #[test]
    fn draws_nothing_without_runs() {
        assert_eq!(
            draw_level(Path::new("/nonexistent"), "http", &[]).unwrap(),
            Vec::<String>::new()
        );
    }
}
