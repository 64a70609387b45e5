//! Files the tests look for or plant: the cache's files by extension, where the cache
//! lives by default, and FIFOs (which a run must never block on).

use std::path::{Path, PathBuf};

/// The files in `dir` (not below it) whose name ends in `.extension`, sorted; empty
/// when `dir` cannot be read.
pub fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == extension)).collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The cache directory tokenxchange uses for `home` when neither `--cache-dir` nor
/// `KUBECACHEDIR` says otherwise.
pub fn default_cache_dir(home: &Path) -> PathBuf {
    home.join(".kube/cache/tokenxchange")
}

/// Replaces whatever is at `path` with a FIFO (`mkfifo`, coreutils).
pub fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo").arg(path).status();
    assert!(status.as_ref().is_ok_and(|s| s.success()), "mkfifo {}: {status:?}", path.display());
}

/// Copies a program that a test then runs, through `cp` (coreutils). Never with
/// `std::fs::copy`: the test process would hold the new file open for writing, and a
/// child that another test thread forks in that moment inherits the descriptor until its
/// own exec, so running the copy fails now and then with "Text file busy" (ETXTBSY).
pub fn copy_program(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg(from).arg(to).status();
    assert!(status.as_ref().is_ok_and(|s| s.success()), "cp {} {}: {status:?}", from.display(), to.display());
}
