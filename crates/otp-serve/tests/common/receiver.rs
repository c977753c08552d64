//! The tests' webhook receiver: `tests/webhooks/receiver.py`, a real HTTP server verifying
//! every delivery with the official `standardwebhooks` package, reporting one JSON value per
//! delivery. Used by tests/webhooks.rs and the workspace's tests/serve_processes.rs.

#![allow(dead_code)] // Each test file uses what it needs.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::python;

/// The endpoints' secret in every test.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver process and what it reported; killed when dropped.
pub struct Receiver {
    child: Child,
    /// Where deliveries go.
    pub url: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    /// `mode`: `ok` (204), `fail3` (500 to a webhook-id's first three tries), `hang`, `redirect`.
    pub fn start(mode: &str) -> Self {
        let script = python::workspace().join("crates/otp-serve/tests/webhooks/receiver.py");
        let mut child = Command::new(python::venv_python())
            .arg(&script)
            .args([SECRET, mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("the webhook receiver needs python3 with standardwebhooks: {e}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the receiver printed its port").unwrap();
        let port: u16 = first.strip_prefix("port ").and_then(|p| p.parse().ok()).expect("port <n>");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(serde_json::from_str::<Value>(&line).unwrap());
            }
        });
        Self { child, url: format!("http://127.0.0.1:{port}/hooks"), seen }
    }

    /// Every delivery so far.
    pub fn seen(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// The deliveries it accepted (2xx).
    pub fn accepted(&self) -> Vec<Value> {
        self.seen().into_iter().filter(|d| d["status"] == 204).collect()
    }

    /// Waits until `done` holds of what it saw (or panics with it after `within`).
    pub async fn until(&self, within: Duration, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(&self.seen()) {
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: not within {within:?}; saw {:#?}", self.seen());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
