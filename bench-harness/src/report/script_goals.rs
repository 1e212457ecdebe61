//! Goal rows out of what other tools printed: the markdown tables of `scripts/bench-module.sh`
//! and `scripts/bench-cluster.sh`, the cluster script's summary lines, and criterion's means
//! (each `gears[_x]` against its `hand_written[_x]` peer).

use std::collections::BTreeMap;

use super::goals::{leading_number, GoalRow};
use super::tables::fmt_ns;

/// The cells of a markdown table line (`| a | b |`), `None` for a line that is no table row.
fn table_cells(line: &str) -> Option<Vec<&str>> {
    let l = line.trim();
    l.starts_with('|')
        .then(|| l.trim_matches('|').split('|').map(str::trim).collect())
}

/// Whether the cells are a header's separator (`|---|:--:|`).
fn is_separator(cells: &[&str]) -> bool {
    cells
        .iter()
        .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

/// A body row of a `name | [measured |] [peer |] ... ratio | goal` table.
fn table_goal_row(section: &str, cells: &[&str]) -> Option<GoalRow> {
    let n = cells.len();
    if n < 3 {
        return None;
    }
    let cell = |min: usize, i: usize| {
        if n >= min {
            cells[i].to_string()
        } else {
            String::new()
        }
    };
    Some(GoalRow::new(
        section,
        cells[0],
        cell(4, 1),
        cell(5, 2),
        leading_number(cells[n - 2]),
        cells[n - 1],
    ))
}

/// Goal rows out of a markdown table whose last two cells are `ratio | goal` (the shape
/// `scripts/bench-module.sh` and `scripts/bench-cluster.sh` print). Rows whose goal is not
/// a number (`report`) are kept with no verdict.
pub(super) fn goal_rows_from_markdown(section: &str, md: &str) -> Vec<GoalRow> {
    let mut out = Vec::new();
    let mut header_seen = false;
    for line in md.lines() {
        let Some(cells) = table_cells(line) else {
            header_seen = false;
            continue;
        };
        if is_separator(&cells) {
            continue;
        }
        if !header_seen {
            header_seen = true; // the first row of a table is its header
            continue;
        }
        out.extend(table_goal_row(section, &cells));
    }
    out
}

/// The number after `key` in `line` (e.g. `ratio 1.23`, `standalone 4.5 ms`).
fn number_after(line: &str, key: &str) -> Option<f64> {
    let at = line.find(key)? + key.len();
    leading_number(&line[at..])
}

/// `<key> <number>` as `<prefix><number> ms`, empty when the line has no such number.
fn ms_after(line: &str, key: &str, prefix: &str) -> String {
    number_after(line, key).map_or(String::new(), |v| format!("{prefix}{v} ms"))
}

/// `count() over N keys: standalone X ms, 3 masters Y ms, ratio R (goal <= 1.5)`.
fn count_row(line: &str) -> GoalRow {
    let goal = line
        .split("(goal")
        .nth(1)
        .map(|g| g.trim().trim_end_matches(')').trim().to_string())
        .unwrap_or_else(|| "≤ 1.5".into());
    let what = line.split(':').next().unwrap_or("count()");
    GoalRow::new(
        "cluster",
        &format!("{what}: 3 masters ÷ standalone (time)"),
        ms_after(line, "3 masters ", ""),
        ms_after(line, "standalone ", "standalone "),
        number_after(line, "ratio "),
        &goal,
    )
}

/// `empty distributed run: T ms round trip (mean of N, goal < 2 ms); standalone S ms`.
fn empty_run_row(line: &str) -> GoalRow {
    GoalRow::new(
        "cluster",
        "empty distributed run, round trip in ms (absolute)",
        ms_after(line, "run: ", ""),
        ms_after(line, "standalone ", "standalone "),
        number_after(line, "run: "),
        "< 2",
    )
}

/// Goal rows out of `scripts/bench-cluster.sh`'s summary lines (the `count()` ratio and
/// the empty distributed run).
pub(super) fn cluster_rows(text: &str) -> Vec<GoalRow> {
    text.lines()
        .map(str::trim)
        .filter_map(|line| {
            if line.starts_with("count() over") {
                Some(count_row(line))
            } else if line.starts_with("empty distributed run:") {
                Some(empty_run_row(line))
            } else {
                None
            }
        })
        .collect()
}

/// Goals of the criterion benchmarks (from docs/benchmarks.md): group → gears ÷ hand-written.
const CRITERION_GOALS: &[(&str, &str)] = &[
    ("fused_map_filter_count", "≤ 2.0"),
    ("count_by_10k_keys", "≤ 3.0"),
];

/// The goal of `gears{suffix}` in `group`: the group's own for plain `gears`, else `report`.
fn criterion_goal(group: &str, suffix: &str) -> &'static str {
    if !suffix.is_empty() {
        return "report";
    }
    CRITERION_GOALS
        .iter()
        .find(|(g, _)| *g == group)
        .map_or("report", |(_, goal)| goal)
}

/// Criterion rows: each `gears[_x]` with its `hand_written[_x]` peer of the same group.
pub(super) fn criterion_rows(means: &BTreeMap<(String, String), f64>) -> Vec<GoalRow> {
    let mut rows = Vec::new();
    for ((g, f), m) in means {
        let Some(suffix) = f.strip_prefix("gears") else {
            continue;
        };
        let peer = format!("hand_written{suffix}");
        if let Some(p) = means.get(&(g.clone(), peer.clone())) {
            rows.push(GoalRow::new(
                "criterion",
                &format!("{g}: {f} ÷ {peer} (time)"),
                fmt_ns(*m),
                fmt_ns(*p),
                Some(m / p),
                criterion_goal(g, suffix),
            ));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_table_rows() {
        let md =
            "\n| benchmark | Gears | peer (same run) | ratio | goal |\n|---|---|---|---|---|\n\
| HSET rps, sync registration | 41322 | plain HSET 57554 | 0.72 | ≥ 0.80 |\n\
| async_local events/s | 44883 | plain HSET 57554 | 0.78 | ≥ 0.5 |\n\
| idle RSS added by the module | 1800 KiB | – | – | report |\n\naudited entries: 1";
        let rows = goal_rows_from_markdown("module", md);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].met, Some(false));
        assert_eq!(rows[0].ratio, Some(0.72));
        assert_eq!(rows[0].measured, "41322");
        assert_eq!(rows[0].peer, "plain HSET 57554");
        assert_eq!(rows[1].met, Some(true));
        assert_eq!(rows[2].met, None);
        assert_eq!(rows[2].ratio, None);
    }

    #[test]
    fn narrow_tables_and_second_tables() {
        // Three cells: no measured, no peer; four: measured only. A second table has its
        // own header.
        let md = "| what | ratio | goal |\n|:--|--:|:-:|\n| a | 1.2× | ≥ 1 |\n\ntext\n\
| name | value | ratio | goal |\n|---|---|---|---|\n| b | 7 ms | 0.5 | ≤ 1 |\n| c | d |\n";
        let rows = goal_rows_from_markdown("x", md);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].name.as_str(), rows[0].ratio), ("a", Some(1.2)));
        assert_eq!((rows[0].measured.as_str(), rows[0].peer.as_str()), ("", ""));
        assert_eq!(
            (rows[1].measured.as_str(), rows[1].peer.as_str()),
            ("7 ms", "")
        );
        assert_eq!(rows[1].met, Some(true));
    }

    #[test]
    fn cluster_lines() {
        let text = "== cluster benchmark (3 masters on loopback, one run)\n\
count() over 200000 keys: standalone 40.1 ms, 3 masters 52.3 ms, ratio 1.30 (goal <= 1.5)\n\
empty distributed run: 0.812 ms round trip (mean of 500, goal < 2 ms); standalone 0.050 ms\n\
repartition shuffle: 150000 records\n";
        let rows = cluster_rows(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].name,
            "count() over 200000 keys: 3 masters ÷ standalone (time)"
        );
        assert_eq!(rows[0].ratio, Some(1.3));
        assert_eq!(rows[0].goal, "<= 1.5");
        assert_eq!(rows[0].met, Some(true));
        assert_eq!(rows[0].measured, "52.3 ms");
        assert_eq!(rows[0].peer, "standalone 40.1 ms");
        assert_eq!(rows[1].ratio, Some(0.812));
        assert_eq!(rows[1].measured, "0.812 ms");
        assert_eq!(rows[1].peer, "standalone 0.05 ms");
        assert_eq!(rows[1].met, Some(true));
        assert!(goal_rows_from_markdown("cluster", text).is_empty());
        // No goal printed: the default one; no numbers: empty cells, no verdict.
        let bare = cluster_rows("count() over 5 keys: failed");
        assert_eq!((bare[0].goal.as_str(), bare[0].met), ("≤ 1.5", None));
        assert_eq!(bare[0].measured, "");
    }

    #[test]
    fn criterion_pairs() {
        let mut means = BTreeMap::new();
        let mut put = |g: &str, f: &str, v: f64| means.insert((g.to_string(), f.to_string()), v);
        put("fused_map_filter_count", "gears", 9.0e6);
        put("fused_map_filter_count", "hand_written", 6.0e6);
        put("fused_map_filter_count", "gears_seq", 8.0e6);
        put("fused_map_filter_count", "hand_written_seq", 2.0e6);
        put("count_by_10k_keys", "gears", 4.0e6);
        put("count_by_10k_keys", "hand_written", 1.0e6);
        put("codec", "gears_x", 2.0);
        let rows = criterion_rows(&means);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(
            rows[0].name,
            "count_by_10k_keys: gears ÷ hand_written (time)"
        );
        assert_eq!((rows[0].ratio, rows[0].met), (Some(4.0), Some(false)));
        assert_eq!(rows[0].goal, "≤ 3.0");
        assert_eq!(rows[1].ratio, Some(1.5));
        assert_eq!(rows[1].met, Some(true));
        assert_eq!(
            (rows[1].measured.as_str(), rows[1].peer.as_str()),
            ("9.00 ms", "6.00 ms")
        );
        assert_eq!(
            rows[2].name,
            "fused_map_filter_count: gears_seq ÷ hand_written_seq (time)"
        );
        assert_eq!(
            (rows[2].ratio, rows[2].goal.as_str()),
            (Some(4.0), "report")
        );
        assert_eq!(rows[2].met, None);
    }
}
