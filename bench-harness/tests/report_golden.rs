//! The report writer's output, byte for byte, for saved results: `gears-bench report` renders
//! `tests/fixtures/sample/` (the inputs of the quick-run sample committed under
//! docs/bench-report/ at c763cff, plus the criterion means its report shows) and must give
//! exactly `tests/fixtures/expected/`: that sample's `report.md` and `spike.csv`, and charts
//! whose FNV-1a hashes are those of its PNGs (checked where the charts are drawn with DejaVu
//! Sans, the font they were drawn with).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The criterion means (ns) behind the sample's criterion table and ratios.
const CRITERION: &[(&str, &str, f64)] = &[
    ("codec_10k_records", "gears_decode", 5.03e6),
    ("codec_10k_records", "gears_encode", 760.75e3),
    ("codec_10k_records", "gears_encode+decode", 6.51e6),
    ("codec_10k_records", "hand_written_encode+decode", 5.91e6),
    ("count_by_10k_keys", "gears", 485.03e6),
    ("count_by_10k_keys", "hand_written", 313.55e6),
    ("executor_1_worker", "gears_1000_lanes", 797.72e6),
    ("executor_1_worker", "gears_1000_lanes_drain", 324.48e6),
    (
        "executor_1_worker",
        "gears_1000_per_lane_drain_5us_jobs",
        593.31e6,
    ),
    ("executor_1_worker", "gears_1_lane", 802.18e6),
    ("executor_1_worker", "gears_1_lane_drain", 229.16e6),
    ("executor_1_worker", "hand_written", 296.01e6),
    ("executor_1_worker", "hand_written_drain", 70.07e6),
    ("executor_2_workers", "gears_1000_lanes", 620.07e6),
    ("executor_2_workers", "gears_1000_lanes_drain", 361.02e6),
    (
        "executor_2_workers",
        "gears_1000_per_lane_drain_5us_jobs",
        363.88e6,
    ),
    ("executor_2_workers", "gears_1_lane", 705.29e6),
    ("executor_2_workers", "gears_1_lane_drain", 317.68e6),
    ("executor_2_workers", "hand_written", 300.0e6),
    ("executor_2_workers", "hand_written_drain", 113.93e6),
    ("fused_map_filter_count", "gears", 9.24e6),
    ("fused_map_filter_count", "gears_sequential_input", 9.04e6),
    ("fused_map_filter_count", "hand_written", 7.45e6),
    (
        "fused_map_filter_count",
        "hand_written_sequential_input",
        7.51e6,
    ),
    ("one_sync_event", "gears", 176.0),
    ("one_sync_event", "hand_written", 55.7),
];

/// The font the expected charts were drawn with.
const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// criterion's layout: `<group>/<function>/new/estimates.json`.
fn write_criterion(dir: &Path) {
    for (group, function, mean) in CRITERION {
        let d = dir.join(group).join(function).join("new");
        std::fs::create_dir_all(&d).unwrap();
        let json = format!(
            r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95}},"point_estimate":{mean},"standard_error":1.0}}}}"#
        );
        std::fs::write(d.join("estimates.json"), json).unwrap();
    }
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The report without its chart lines (for a machine that cannot draw them).
fn without_charts(md: &str) -> String {
    md.lines()
        .filter(|l| {
            !(l.starts_with("![") || l.starts_with("Single charts:") || l.starts_with("**Charts"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn report_of_the_sample_is_unchanged() {
    let dir = std::env::temp_dir().join(format!("bench-golden-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixtures().join("sample"), &dir);
    let crit = dir.join("criterion");
    write_criterion(&crit);

    let out = Command::new(env!("CARGO_BIN_EXE_gears-bench"))
        .arg("report")
        .arg("--dir")
        .arg(&dir)
        .arg("--criterion")
        .arg(&crit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let expected = fixtures().join("expected");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(
        read(&dir.join("spike.csv")),
        read(&expected.join("spike.csv"))
    );
    let md = read(&dir.join("report.md"));
    let want = read(&expected.join("report.md"));
    if md.contains("**Charts not drawn**") {
        eprintln!("charts not drawn here (no font): comparing the report without its chart lines");
        assert_eq!(without_charts(&md), without_charts(&want));
    } else {
        assert_eq!(md, want);
    }

    if std::env::var_os("BENCH_FONT").is_none() && Path::new(DEJAVU).exists() {
        for line in read(&expected.join("charts.fnv1a")).lines() {
            let (hash, file) = line.split_once(' ').unwrap();
            let got = fnv1a(&std::fs::read(dir.join(file)).unwrap());
            assert_eq!(format!("{got:016x}"), hash, "{file}");
        }
    } else {
        eprintln!("charts not compared: drawn with another font than {DEJAVU}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
