//! The report's Markdown tables (machine, spike phases per level, CPU per request, every
//! comparison, criterion means) and the number formats they share.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::goals::GoalRow;
use super::inputs::{wall_s, Run};

/// A value with two decimals, or none from 100 up.
pub(super) fn f1(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Nanoseconds in the unit that suits them.
pub(super) fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A ratio in bold, `–` when there is none.
fn show_ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("**{r:.2}**"))
}

/// A table row: `| a | b |` and a newline.
fn row<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut line = String::from("|");
    for c in cells {
        let _ = write!(line, " {} |", c.as_ref());
    }
    line.push('\n');
    line
}

/// A header row and its separator.
fn header(cells: &[&str]) -> String {
    row(cells) + "|" + &"---|".repeat(cells.len()) + "\n"
}

/// The `machine.txt` values shown, with their labels, in this order.
const MACHINE: &[(&str, &str)] = &[
    ("cpu", "CPU"),
    ("cores", "cores"),
    ("memory", "memory"),
    ("os", "OS"),
    ("kernel", "kernel"),
    ("rustc", "rustc"),
    ("redis", "redis-server"),
    ("mariadb", "MariaDB"),
    ("odbc", "MariaDB ODBC driver"),
    ("load", "load average before the run"),
    ("duration", "wall time of the run"),
    ("timings", "time per section"),
];

/// The machine and versions, the lines `machine.txt` has.
pub(super) fn machine_table(machine: &BTreeMap<String, String>) -> String {
    let mut md = String::from("| | |\n|---|---|\n");
    for (k, label) in MACHINE {
        if let Some(v) = machine.get(*k) {
            md.push_str(&row([*label, v]));
        }
    }
    md
}

const SPIKE_HEADER: &[&str] = &[
    "target",
    "peak req/s",
    "peak p50",
    "peak p95",
    "peak p99",
    "peak mean",
    "peak max",
    "whole-run req/s",
    "whole-run p95",
    "MariaDB rows/s at peak",
    "errors",
    "backlog drained after the load",
];

/// How long the backlog took to drain after the load.
fn drained(drain_s: Option<f64>) -> String {
    match drain_s {
        Some(d) if d < 0.0 => "not within the timeout".to_string(),
        Some(d) => format!("{d:.1} s"),
        None => "–".into(),
    }
}

/// One run's row: its peak phase, the whole run, errors and the drain.
fn spike_row(r: &Run) -> String {
    let (Some(p), Some(l)) = (&r.peak, &r.load) else {
        return format!("| {} | no summary | | | | | | | | | | |\n", r.sc.label);
    };
    let ms = |v: f64| format!("{} ms", f1(v));
    row([
        r.sc.label.to_string(),
        f1(p.rps),
        ms(p.latency.p50_ms),
        ms(p.latency.p95_ms),
        ms(p.latency.p99_ms),
        ms(p.latency.mean_ms),
        ms(p.latency.max_ms),
        f1(l.rps),
        ms(l.latency.p95_ms),
        p.db_rows_per_s.map_or("–".into(), f1),
        l.errors.to_string(),
        drained(p.drain_s),
    ])
}

/// The spike table of one level: a row per run.
pub(super) fn spike_table(runs: &[&Run]) -> String {
    let mut md = header(SPIKE_HEADER);
    for r in runs {
        md.push_str(&spike_row(r));
    }
    md
}

/// The process names of every run's CPU accounting, first seen first.
fn process_names(per: &[(&Run, Vec<(String, f64)>)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (n, _) in per.iter().flat_map(|(_, c)| c) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// A run's CPU row: each process's seconds per 10 000 requests, the total, and the cores
/// busy on average over the load and the drain; `None` for a run without requests.
fn cpu_row(r: &Run, cpu: &[(String, f64)], names: &[String]) -> Option<String> {
    let req = r.requests_ok().unwrap_or(0.0);
    if req <= 0.0 {
        return None;
    }
    let wall = r.load.as_ref().map_or(0.0, wall_s);
    let per_10k = |v: f64| format!("{:.2}", v / req * 1e4);
    let secs: Vec<Option<f64>> = names
        .iter()
        .map(|n| cpu.iter().find(|(m, _)| m == n).map(|(_, v)| *v))
        .collect();
    let total: f64 = secs.iter().flatten().sum();
    let mut cells = vec![r.sc.label.to_string()];
    cells.extend(secs.iter().map(|v| v.map_or("–".into(), per_10k)));
    cells.push(per_10k(total));
    cells.push(if wall > 0.0 {
        format!("{:.2}", total / wall)
    } else {
        "–".into()
    });
    Some(row(cells))
}

/// CPU seconds per 10 000 requests by process (load and drain), and cores busy on average;
/// empty when no run has CPU accounting.
pub(super) fn cpu_table(runs: &[&Run]) -> String {
    let per: Vec<(&Run, Vec<(String, f64)>)> = runs
        .iter()
        .map(|r| (*r, r.cpu()))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    if per.is_empty() {
        return String::new();
    }
    let names = process_names(&per);
    let mut md = String::from(
        "CPU seconds per 10 000 requests, by process, over the load and the write-behind drain \
         (from `/proc/<pid>/stat`; MariaDB's includes anything else it served meanwhile):\n\n",
    );
    let mut head = vec!["target"];
    head.extend(names.iter().map(String::as_str));
    head.extend(["total", "cores busy on average"]);
    md.push_str(&header(&head));
    for (r, c) in &per {
        md.extend(cpu_row(r, c, &names));
    }
    md.push('\n');
    md
}

/// Every comparison with its ratio, goal and verdict.
pub(super) fn goals_table(goals: &[GoalRow]) -> String {
    let mut md = header(&[
        "section",
        "comparison",
        "measured",
        "peer (same run)",
        "ratio",
        "goal",
        "verdict",
    ]);
    for g in goals {
        md.push_str(&row([
            g.section.as_str(),
            &g.name,
            &g.measured,
            &g.peer,
            &show_ratio(g.ratio),
            &g.goal_shown(),
            g.verdict(),
        ]));
    }
    md
}

/// The goals table's row for the cluster benchmark that did not run, with the reason.
pub(super) fn cluster_missing_row(reason: &str) -> String {
    format!(
        "| cluster | `count()` on 3 masters ÷ standalone; empty distributed run round trip | {reason} | | – | | – |\n"
    )
}

/// Every criterion mean.
pub(super) fn criterion_table(means: &BTreeMap<(String, String), f64>) -> String {
    let mut md = header(&["group", "function", "mean"]);
    for ((g, f), m) in means {
        md.push_str(&row([g.as_str(), f, &fmt_ns(*m)]));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::inputs::SCENARIOS;
    use crate::stats::Summary;

    fn run(id: &str, info: &[(&str, &str)], load: Option<&str>, peak: Option<&str>) -> Run {
        let summary =
            |phase: &str, rest: &str| Summary::from_csv(&format!("{id},{phase},{rest}")).unwrap();
        Run {
            sc: SCENARIOS.iter().find(|s| s.id == id).unwrap(),
            rows: Vec::new(),
            load: load.map(|l| summary("load", l)),
            peak: peak.map(|p| summary("peak", p)),
            info: info
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(f1(1234.56), "1235");
        assert_eq!(f1(99.999), "100.00");
        assert_eq!(f1(2.345_67), "2.35");
        assert_eq!(fmt_ns(2.5e9), "2.50 s");
        assert_eq!(fmt_ns(9.24e6), "9.24 ms");
        assert_eq!(fmt_ns(760.75e3), "760.75 µs");
        assert_eq!(fmt_ns(55.7), "56 ns");
        assert_eq!(show_ratio(Some(1.005)), "**1.00**");
        assert_eq!(show_ratio(None), "–");
        assert_eq!(header(&["a", "b c"]), "| a | b c |\n|---|---|\n");
    }

    #[test]
    fn machine_rows_in_order() {
        let m: BTreeMap<String, String> = [("redis", "7.0.15"), ("cpu", "EPYC"), ("other", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            machine_table(&m),
            "| | |\n|---|---|\n| CPU | EPYC |\n| redis-server | 7.0.15 |\n"
        );
    }

    #[test]
    fn spike_rows() {
        let wb = run(
            "proto-wb",
            &[],
            Some("30,60000,2,2000.0,1.5,1.2,4.25,9,20,,"),
            Some("10,25000,0,2500.0,1.25,1.0,3.5,7.75,150.5,812.0,4.0"),
        );
        let stuck = run(
            "proto-db",
            &[],
            Some("30,100,0,3.3,1,1,1,1,1,,"),
            Some("10,10,0,1,1,1,1,1,1,,-1"),
        );
        let bare = run("proto-redis", &[], None, None);
        let md = spike_table(&[&wb, &stuck, &bare]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("| target | peak req/s | peak p50 |"));
        assert_eq!(
            lines[1],
            "|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        assert_eq!(
            lines[2],
            "| Redis + write-behind | 2500 | 1.00 ms | 3.50 ms | 7.75 ms | 1.25 ms | 150 ms | 2000 | 4.25 ms | 812 | 2 | 4.0 s |"
        );
        assert!(
            lines[3].ends_with("| – | 0 | not within the timeout |"),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4],
            "| plain Redis HSET | no summary | | | | | | | | | | |"
        );
    }

    #[test]
    fn cpu_rows() {
        let load = Some("8,20000,0,2500,1,1,1,1,1,,2.0");
        let wb = run(
            "proto-wb",
            &[
                ("cpu", "redis-server:3.0;mariadbd:1.0"),
                ("requests_ok", "20000"),
            ],
            load,
            None,
        );
        let plain = run(
            "proto-redis",
            &[
                ("cpu", "redis-server:0.5;load generator:1.5"),
                ("requests_ok", "10000"),
            ],
            None,
            None,
        );
        let idle = run(
            "proto-db",
            &[("cpu", "mariadbd:1.0"), ("requests_ok", "0")],
            load,
            None,
        );
        let none = run("http-db", &[], load, None);
        let md = cpu_table(&[&wb, &none, &plain, &idle]);
        let table: Vec<&str> = md.lines().skip(2).filter(|l| !l.is_empty()).collect();
        assert_eq!(
            table[0],
            "| target | redis-server | mariadbd | load generator | total | cores busy on average |"
        );
        assert_eq!(table[1], "|---|---|---|---|---|---|");
        // 4 CPU-s over 20 000 requests and 8 + 2 s of wall time.
        assert_eq!(
            table[2],
            "| Redis + write-behind | 1.50 | 0.50 | – | 2.00 | 0.40 |"
        );
        // No load summary: no wall time, so no cores-busy figure.
        assert_eq!(
            table[3],
            "| plain Redis HSET | 0.50 | – | 1.50 | 2.00 | – |"
        );
        assert_eq!(table.len(), 4, "the run without requests has no row: {md}");
        assert!(md.ends_with("|\n\n"));
        assert_eq!(cpu_table(&[&none]), "");
    }

    #[test]
    fn goal_and_criterion_rows() {
        let mut miss = GoalRow::new(
            "spike",
            "a ÷ b",
            "1 req/s".into(),
            "4 req/s".into(),
            Some(0.25),
            ">= 4.0",
        );
        miss.why = "not shown in the table".into();
        let report = GoalRow::new(
            "module",
            "RSS",
            "1800 KiB".into(),
            String::new(),
            None,
            "report",
        );
        let md = goals_table(&[miss, report]);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| section | comparison | measured | peer (same run) | ratio | goal | verdict |"
        );
        assert_eq!(
            lines[2],
            "| spike | a ÷ b | 1 req/s | 4 req/s | **0.25** | ≥ 4 | ✗ not met |"
        );
        assert_eq!(lines[3], "| module | RSS | 1800 KiB |  | – | report | – |");
        assert_eq!(
            cluster_missing_row("not measured: timeout"),
            "| cluster | `count()` on 3 masters ÷ standalone; empty distributed run round trip | not measured: timeout | | – | | – |\n"
        );
        let means: BTreeMap<(String, String), f64> = [
            (("g".to_string(), "gears".to_string()), 1.5e6),
            (("a".to_string(), "x".to_string()), 12.0),
        ]
        .into();
        assert_eq!(
            criterion_table(&means),
            "| group | function | mean |\n|---|---|---|\n| a | x | 12 ns |\n| g | gears | 1.50 ms |\n"
        );
    }
}
