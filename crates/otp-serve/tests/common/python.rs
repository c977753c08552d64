//! The tests' Python tools (`.ci/requirements.txt`, pinned) in a virtualenv of the target
//! directory: `$CARGO_TARGET_DIR/python-venv`, else `<workspace>/target/python-venv`.
//!
//! `.ci/run` makes it before the tests; a developer running `cargo test` alone gets it made
//! here on first use. It is remade whenever the requirements file changes (the SHA-256 of the
//! file is kept inside the venv, written last, so a half-made venv never counts). Two test
//! processes making it at once take turns on a lock file. A venv that cannot be made fails the
//! test that asked for it, with pip's output: it never skips.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// The file inside the venv holding the SHA-256 of the requirements it was made from.
/// `.ci/run` writes the same file, the same way (lowercase hex, one line).
const STAMP: &str = "requirements.sha256";

/// A lock older than this is a dead maker's (an install takes about a minute).
const STALE_LOCK: Duration = Duration::from_secs(15 * 60);

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root")
}

fn requirements() -> PathBuf {
    workspace().join(".ci/requirements.txt")
}

/// Where the venv is (made or not).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        // A relative target directory is the workspace's, as `cargo` run there reads it.
        Some(dir) => workspace().join(dir).join("python-venv"),
        None => workspace().join("target/python-venv"),
    }
}

/// The venv's Python, the venv made (or remade) first if it is missing or stale.
pub fn venv_python() -> PathBuf {
    venv_bin("python")
}

/// A program the requirements installed into the venv (`schemathesis`, …), the venv made first.
pub fn venv_bin(name: &str) -> PathBuf {
    let dir = ensure_venv();
    let path = if cfg!(windows) { dir.join("Scripts").join(format!("{name}.exe")) } else { dir.join("bin").join(name) };
    assert!(path.exists(), "{} is not in the venv: is it in {}?", path.display(), requirements().display());
    path
}

fn ensure_venv() -> PathBuf {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = venv_dir();
        let wanted = requirements_hash();
        if stamp(&dir).as_deref() == Some(wanted.as_str()) {
            return dir;
        }
        let _lock = Lock::take(&dir.with_extension("lock"));
        // Another process may have made it while this one waited for the lock.
        if stamp(&dir).as_deref() != Some(wanted.as_str()) {
            make(&dir, &wanted);
        }
        dir
    })
    .clone()
}

fn requirements_hash() -> String {
    let path = requirements();
    let text = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&text).iter().map(|b| format!("{b:02x}")).collect()
}

fn stamp(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(STAMP)).ok().map(|text| text.trim().to_owned())
}

/// A fresh venv with the requirements installed, its stamp written last.
fn make(dir: &Path, hash: &str) {
    if dir.exists() {
        // Remade whole: a requirement taken out of the file must go too.
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(dir),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    );
    let python = if cfg!(windows) { dir.join("Scripts/python.exe") } else { dir.join("bin/python") };
    run(
        Command::new(python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(requirements()),
        "pip install -r .ci/requirements.txt",
    );
    fs::write(dir.join(STAMP), format!("{hash}\n")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): the tests need the Python tools of .ci/requirements.txt\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A lock file made with `create_new` (atomic: one process gets it), holding its maker's pid;
/// removed when dropped. A lock whose maker is gone (or that is very old) is taken over.
struct Lock(PathBuf);

impl Lock {
    fn take(path: &Path) -> Self {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        let waited_since = SystemTime::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    return Self(path.to_owned());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Self::is_stale(path) {
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    let waited = waited_since.elapsed().unwrap_or_default();
                    assert!(waited < 2 * STALE_LOCK, "{} is still held after {waited:?}", path.display());
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }

    fn is_stale(path: &Path) -> bool {
        let old = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|made| made.elapsed().ok())
            .is_some_and(|age| age > STALE_LOCK);
        // On Linux a maker that died (a cancelled test run) is seen at once.
        let owner = fs::read_to_string(path).ok().and_then(|text| text.trim().parse::<u32>().ok());
        let dead =
            owner.is_some_and(|pid| Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists());
        old || dead
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
