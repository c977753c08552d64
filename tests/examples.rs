//! The clients in `examples/` — Python (standard library), Node (built-in fetch) and Java
//! (java.net.http, single-file) — each run the whole flow against the real `otp serve
//! --sandbox`: start, read the code from the sandbox's inbox, a wrong code (422 `wrong_otp`,
//! `tries_left` 4, problem+json), the right one (200 approved), the status (approved).
//!
//! `python3`, `node` and `java` must be on PATH: without one this test fails and names it; it
//! never skips (`.ci/run` checks for them first).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The running `otp serve --sandbox`, killed when the test ends, passes or panics.
struct Server {
    child: Child,
    stderr_log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failure has already put the log into its message.
        let _ = std::fs::remove_file(&self.stderr_log);
    }
}

impl Server {
    /// The service's own log so far (its stderr goes to a file, so it can never fill a pipe).
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

/// What `otp serve --sandbox` announced on stdout.
struct Announced {
    base_url: String,
    api_key: String,
    sandbox_url: String,
}

/// Starts `otp serve --sandbox` on a free loopback port (port 0: the kernel picks it, the
/// `listening:` line names it) and reads the three lines it needs (the inbox page's, after
/// them, is drained with the rest).
fn start_server() -> (Server, Announced) {
    let stderr_log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-serve-{}.log", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_otp"))
        .args(["serve", "--sandbox", "--addr", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr_log).unwrap())
        .spawn()
        .expect("start the otp binary");
    let stdout = child.stdout.take().unwrap();
    let server = Server { child, stderr_log };
    let mut lines = BufReader::new(stdout);
    let mut field = |prefix: &str| {
        let mut line = String::new();
        let read = lines.read_line(&mut line).unwrap();
        assert!(read > 0, "otp serve --sandbox exited before printing {prefix:?}; its log:\n{}", server.log());
        line.trim_end()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected a line starting {prefix:?}, got {line:?}; log:\n{}", server.log()))
            .to_owned()
    };
    let announced =
        Announced { base_url: field("listening: "), api_key: field("api_key: "), sandbox_url: field("sandbox: ") };
    // Nothing more is expected on stdout; keep draining it so the service can never block on it.
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    (server, announced)
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The interpreters the examples need; a missing one fails the test with the reason.
fn require_tools() {
    let missing: Vec<String> = [("python3", "--version"), ("node", "--version"), ("java", "-version")]
        .into_iter()
        .filter_map(|(tool, flag)| match Command::new(tool).arg(flag).output() {
            Ok(output) if output.status.success() => None,
            Ok(output) => Some(format!("`{tool} {flag}` exited with {}", output.status)),
            Err(error) => Some(format!("`{tool}` cannot be run ({error}): it is not on PATH")),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the examples test needs python3, node and java on PATH and never skips; install them \
         (Debian: apt-get install python3 nodejs default-jdk-headless):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_python_node_and_java_examples_run_the_whole_flow_against_otp_serve_sandbox() {
    require_tools();
    let (server, announced) = start_server();
    let dir = examples_dir();
    // A number per client: the guard's cooldown is per number.
    let clients: [(&str, Vec<PathBuf>, &str); 3] = [
        ("python3", vec![dir.join("python/verify_flow.py")], "9876500001"),
        ("node", vec![dir.join("node/verify_flow.mjs")], "9876500002"),
        ("java", vec![dir.join("java/VerifyFlow.java")], "9876500003"),
    ];
    let mut failures = Vec::new();
    for (program, script, mobile) in clients {
        let started = Instant::now();
        let output = Command::new(program)
            .args(&script)
            .args([&announced.base_url, &announced.api_key, &announced.sandbox_url])
            .arg(mobile)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = format!(
            "{program} {} ({mobile}): {} in {:.1?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            script[0].display(),
            output.status,
            started.elapsed()
        );
        println!("{report}");
        if !output.status.success() || !stdout.contains("flow passed") {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "example clients failed:\n{}\n--- otp serve's log\n{}",
        failures.join("\n"),
        server.log()
    );
    drop(server);
}
