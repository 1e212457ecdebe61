//! Where things are on disk: the modules `cargo build` made, and scratch directories.

use std::path::PathBuf;

/// The module `lib<name>.so` (for example `module_file("gears_wordcount")`), from
/// `$GEARS_MODULE_DIR` when set (the cluster benchmark points it at a release build), else
/// from the debug build of the workspace (`$CARGO_TARGET_DIR` or `target/`).
///
/// Panics, saying how to build it, if the file is missing: the tests load what
/// `cargo build --workspace` made (scripts/test.sh builds first).
pub fn module_file(name: &str) -> PathBuf {
    let file = format!("lib{name}.so");
    let path = match std::env::var_os("GEARS_MODULE_DIR") {
        Some(dir) => PathBuf::from(dir).join(file),
        None => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join("debug").join(file)
        }
    };
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A fresh, empty directory `gears-testkit-<pid>-<name>` in the system's temp directory
/// (whatever was there from an earlier run of the same process id is removed).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gears-testkit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// The workspace root (where `scripts/` is).
#[cfg(feature = "db")]
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
