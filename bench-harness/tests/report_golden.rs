//! The report writer's output, byte for byte, for saved results: `gears-bench report` renders
//! `tests/fixtures/sample/` (the inputs of the quick-run sample committed under
//! docs/bench-report/ at c763cff) with the criterion means of `tests/fixtures/criterion.txt`
//! (those its report shows), and must give exactly `tests/fixtures/expected/`: that sample's
//! `report.md` and `spike.csv`, and charts whose FNV-1a hashes are those of its PNGs (checked
//! where the charts are drawn with DejaVu Sans, the font they were drawn with).

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// criterion's layout, `<group>/<function>/new/estimates.json`, for the means of
/// `fixtures/criterion.txt` (`group function mean_ns` lines).
fn write_criterion(dir: &Path) {
    let table = std::fs::read_to_string(fixtures().join("criterion.txt")).unwrap();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let [group, function, mean] = line.split_whitespace().collect::<Vec<_>>()[..] else {
            panic!("want `group function mean_ns`: {line}");
        };
        let mean: f64 = mean.parse().unwrap();
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
