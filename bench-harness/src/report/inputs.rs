//! What the runs left in the results directory, read once: `machine.txt`, the spike runs,
//! `capture.info`, `drain.info`, `module.md`, `cluster.md` / `cluster.missing` and the
//! criterion means. Every piece is optional; a missing one reads as empty.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::style::RGBColor;

use crate::stats::{self, Row, Summary};

/// A spike scenario: file stem, level, label, color.
pub(super) struct Scenario {
    pub(super) id: &'static str,
    pub(super) level: &'static str,
    pub(super) label: &'static str,
    pub(super) color: RGBColor,
}

const RED: RGBColor = RGBColor(214, 39, 40);
const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREEN: RGBColor = RGBColor(44, 160, 44);

/// Every spike scenario the script runs.
pub(super) const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "proto-db",
        level: "protocol",
        label: "direct MariaDB upsert",
        color: RED,
    },
    Scenario {
        id: "proto-wb",
        level: "protocol",
        label: "Redis + write-behind",
        color: BLUE,
    },
    Scenario {
        id: "proto-redis",
        level: "protocol",
        label: "plain Redis HSET",
        color: GREEN,
    },
    Scenario {
        id: "http-db",
        level: "http",
        label: "HTTP /db (direct MariaDB)",
        color: RED,
    },
    Scenario {
        id: "http-wb",
        level: "http",
        label: "HTTP /wbredis (write-behind)",
        color: BLUE,
    },
    Scenario {
        id: "http-redis",
        level: "http",
        label: "HTTP /redis (plain Redis)",
        color: GREEN,
    },
];

/// `key=value` lines (a missing file reads as none).
pub(super) fn read_kv(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A loaded spike run.
pub(super) struct Run {
    pub(super) sc: &'static Scenario,
    pub(super) rows: Vec<Row>,
    pub(super) load: Option<Summary>,
    pub(super) peak: Option<Summary>,
    pub(super) info: BTreeMap<String, String>,
}

impl Run {
    /// The `key=` line of the run's info, when present and not empty.
    pub(super) fn info(&self, key: &str) -> Option<&str> {
        self.info
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The successful requests the run counted.
    pub(super) fn requests_ok(&self) -> Option<f64> {
        self.info.get("requests_ok")?.parse().ok()
    }

    /// CPU seconds by process over the load and the drain (`cpu=name:secs;...`).
    pub(super) fn cpu(&self) -> Vec<(String, f64)> {
        parse_cpu_info(self.info.get("cpu").map_or("", String::as_str))
    }
}

/// Wall seconds of a load phase and the write-behind drain after it.
pub(super) fn wall_s(load: &Summary) -> f64 {
    load.seconds as f64 + load.drain_s.unwrap_or(0.0).max(0.0)
}

/// `name:secs;name:secs` from a run's info.
pub(super) fn parse_cpu_info(s: &str) -> Vec<(String, f64)> {
    s.split(';')
        .filter_map(|p| p.rsplit_once(':'))
        .filter_map(|(n, v)| v.parse().ok().map(|v| (n.to_string(), v)))
        .collect()
}

/// The runs of every scenario whose per-second CSV exists, in [`SCENARIOS`] order.
fn load_runs(spike_dir: &Path) -> Vec<Run> {
    SCENARIOS
        .iter()
        .filter_map(|sc| {
            let file = |ext: &str| spike_dir.join(format!("{}.{ext}", sc.id));
            let rows = stats::read_csv(&file("csv")).ok()?;
            let sums = stats::read_summaries(&file("summary.csv")).unwrap_or_default();
            let phase = |p: &str| sums.iter().find(|s| s.phase == p).cloned();
            Some(Run {
                sc,
                rows,
                load: phase("load"),
                peak: phase("peak"),
                info: read_kv(&file("info")),
            })
        })
        .collect()
}

/// Mean times (ns) of criterion benchmarks: `(group, function) -> mean`.
pub(super) fn criterion_means(dir: &Path) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(dir) else {
        return out;
    };
    for g in groups.flatten() {
        let Ok(funcs) = std::fs::read_dir(g.path()) else {
            continue;
        };
        for f in funcs.flatten() {
            let est = f.path().join("new").join("estimates.json");
            if let Some(mean) = std::fs::read_to_string(&est)
                .ok()
                .and_then(|t| json_mean(&t))
            {
                let name = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().to_string();
                out.insert((name(&g), name(&f)), mean);
            }
        }
    }
    out
}

/// `mean.point_estimate` out of criterion's estimates.json (no JSON parser needed: the
/// first `point_estimate` after `"mean":`).
pub(super) fn json_mean(text: &str) -> Option<f64> {
    let at = text.find("\"mean\"")?;
    let rest = &text[at..];
    let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    super::goals::leading_number(&rest[p..])
}

/// Everything the report is made of.
pub(super) struct Inputs {
    pub(super) machine: BTreeMap<String, String>,
    pub(super) runs: Vec<Run>,
    pub(super) capture: BTreeMap<String, String>,
    pub(super) drain: BTreeMap<String, String>,
    pub(super) module_md: Option<String>,
    pub(super) cluster_md: Option<String>,
    pub(super) cluster_missing: Option<String>,
    pub(super) criterion: BTreeMap<(String, String), f64>,
}

impl Inputs {
    /// Reads the results directory (and the criterion directory, when given).
    pub(super) fn read(dir: &Path, criterion_dir: Option<&Path>) -> Inputs {
        let text = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        Inputs {
            machine: read_kv(&dir.join("machine.txt")),
            runs: load_runs(&dir.join("spike")),
            capture: read_kv(&dir.join("capture.info")),
            drain: read_kv(&dir.join("drain.info")),
            module_md: text("module.md"),
            cluster_md: text("cluster.md"),
            cluster_missing: text("cluster.missing"),
            criterion: criterion_dir.map(criterion_means).unwrap_or_default(),
        }
    }

    /// A `machine.txt` value, `?` when missing.
    pub(super) fn machine(&self, key: &str) -> String {
        self.machine.get(key).cloned().unwrap_or_else(|| "?".into())
    }

    /// The runs of one level (`protocol`, `http`).
    pub(super) fn level(&self, level: &str) -> Vec<&Run> {
        self.runs.iter().filter(|r| r.sc.level == level).collect()
    }

    /// The peak phase of a scenario's run.
    pub(super) fn peak(&self, id: &str) -> Option<&Summary> {
        self.runs
            .iter()
            .find(|r| r.sc.id == id)
            .and_then(|r| r.peak.as_ref())
    }

    /// Why the cluster rows are missing (`cluster.missing`, else the script is absent).
    pub(super) fn cluster_missing_reason(&self, default: &'static str) -> &str {
        self.cluster_missing
            .as_deref()
            .map(str::trim)
            .unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_info() {
        assert_eq!(
            parse_cpu_info("redis-server:1.50;load generator:2.25"),
            vec![
                ("redis-server".to_string(), 1.5),
                ("load generator".to_string(), 2.25)
            ]
        );
        assert!(parse_cpu_info("").is_empty());
    }

    #[test]
    fn criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"lower_bound":1.0},"point_estimate":9030000.5,"standard_error":1.0},"median":{"point_estimate":1.0}}"#;
        assert_eq!(json_mean(json), Some(9030000.5));
        assert_eq!(json_mean(r#"{"median":{"point_estimate":1.0}}"#), None);
        let dir = std::env::temp_dir().join(format!("bench-crit-{}", std::process::id()));
        let est = dir.join("g").join("gears").join("new");
        std::fs::create_dir_all(&est).unwrap();
        std::fs::write(est.join("estimates.json"), json).unwrap();
        std::fs::create_dir_all(dir.join("g").join("no_estimates")).unwrap();
        let means = criterion_means(&dir);
        assert_eq!(means.len(), 1);
        assert_eq!(means[&("g".to_string(), "gears".to_string())], 9030000.5);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(criterion_means(&dir).is_empty());
    }

    #[test]
    fn kv_and_wall() {
        let dir = std::env::temp_dir().join(format!("bench-kv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.txt"), "a = 1\nno equals\nb=x=y\n").unwrap();
        let kv = read_kv(&dir.join("m.txt"));
        assert_eq!(kv.len(), 2);
        assert_eq!(kv["a"], "1");
        assert_eq!(kv["b"], "x=y");
        assert!(read_kv(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
        let mut load = Summary::from_csv("s,load,20,100,0,5.0,1,1,1,1,1,,").unwrap();
        assert_eq!(wall_s(&load), 20.0);
        load.drain_s = Some(2.5);
        assert_eq!(wall_s(&load), 22.5);
        load.drain_s = Some(-1.0); // did not drain before the timeout
        assert_eq!(wall_s(&load), 20.0);
    }
}
