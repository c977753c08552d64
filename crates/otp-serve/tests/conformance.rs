//! A property-based conformance run: schemathesis (pinned in `.ci/requirements.txt`) reads the
//! service's own `/openapi.json` and sends what it generates from it — valid and invalid
//! bodies, parameters and headers, other methods, no or a wrong key, chains of calls linked by
//! `Location` — to a real service with the sandbox as every gateway, checking every answer
//! against the document: no 5xx, only documented statuses and content types, bodies and
//! headers matching their schemas.
//!
//! Random ids and numbers alone never reach a verification, so the run is also handed real
//! ones: verifications started here of every gateway (and of the test number), the one code
//! the sandbox sends, fresh valid numbers and addresses, each drawn for a parameter half of
//! the time. `schemathesis_checks.py` adds the document's own rules: each problem code is one
//! its operation lists, and every verification operation succeeded at least once.
//!
//! Derandomised (deterministic generation; schemathesis takes no seed then) and bounded in
//! examples per operation, so a failure reproduces and the run takes under a minute.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use std::process::Command;
use std::time::Instant;

use common::python::venv_bin;
use common::{checkable_number, number, start_body, Harness, Store, TEST_CODE, TEST_NUMBER};
use otp::Gateway;

/// Test cases per operation and phase: the whole run takes 25 to 45 s on two cores.
const MAX_EXAMPLES: &str = "300";

/// What the flags cannot say, and the values drawn from (TOML; each `{…}` is filled in below).
/// Every check of `--checks all` applies: none is excluded.
const CONFIG: &str = r#"
# A schema-valid body may still be refused for what a JSON Schema cannot state: a code that is
# not the one sent (422 wrong_otp), a number or a date the SDK refuses (422 invalid_request), a
# verification already over (410). Only a 400 (or another undocumented status) for a
# schema-valid request is a failure.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "422", "429", "5xx"]

[dictionaries.ids]
values = {ids}

[dictionaries.check_ids]
values = {check_ids}

[dictionaries.resend_ids]
values = {resend_ids}

[dictionaries.cancel_ids]
values = {cancel_ids}

[dictionaries.numbers]
values = {numbers}

[dictionaries.codes]
values = {codes}

[dictionaries.addresses]
values = ["203.0.113.7", "2001:db8::7"]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.5 }
"body.to" = { dictionary = "numbers", probability = 0.5 }
"body.code" = { dictionary = "codes", probability = 0.5 }
"body.client_ip" = { dictionary = "addresses", probability = 0.5 }

# A check approves, a cancel ends: each of the routes that change a verification has its own,
# so that how the workers interleave operations never leaves one with only finished ones.
[[operations]]
include-name = "POST /v1/verifications/{id}/check"
parameters = { "path.id" = { dictionary = "check_ids", probability = 0.5 } }

[[operations]]
include-name = "POST /v1/verifications/{id}/resend"
parameters = { "path.id" = { dictionary = "resend_ids", probability = 0.5 } }

[[operations]]
include-name = "POST /v1/verifications/{id}/cancel"
parameters = { "path.id" = { dictionary = "cancel_ids", probability = 0.5 } }
"#;

/// Pending verifications of the writer's tenant to draw ids from: one of every gateway on its
/// fixture's checkable number (AOPay's: a remitter to register) and one on the test number,
/// and another tenant's (`not_found` for this key, whatever it sends).
async fn pool(harness: &Harness) -> Vec<String> {
    let mut ids = Vec::new();
    for gateway in Gateway::ALL {
        for to in [checkable_number(gateway), TEST_NUMBER.to_owned()] {
            let started = harness.api.start(&harness.keys.writer, start_body(gateway, &to), &[]).await;
            assert_eq!(started.status, 201, "{gateway}: {}", started.text);
            ids.push(started.id());
        }
    }
    let other = harness.api.start(&harness.keys.other, start_body(Gateway::ALL[0], &number()), &[]).await;
    assert_eq!(other.status, 201, "{}", other.text);
    ids.push(other.id());
    ids
}

/// A code of the right shape that the sandbox never sends (it sends `TEST_CODE`).
const WRONG_CODE: &str = "000000";

/// A TOML array of strings.
fn toml_strings(values: &[String]) -> String {
    serde_json::to_string(values).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_outside_the_document() {
    let schemathesis = tokio::task::spawn_blocking(|| venv_bin("schemathesis")).await.unwrap();
    // Every code the sandbox sends is the test number's: a check of the code the document gives
    // as its example, or drawn from `codes`, approves whichever verification it names (and
    // `codes`' other one is a wrong code).
    let harness = Harness::start_with_sandbox(Store::Memory, |sandbox| sandbox.fixed_otp(TEST_CODE), |c| c).await;
    let base = harness.server.base_url();
    let key = harness.keys.writer.clone();

    let (status_ids, check_ids) = (pool(&harness).await, pool(&harness).await);
    let (resend_ids, cancel_ids) = (pool(&harness).await, pool(&harness).await);
    let numbers: Vec<String> = (0..20).map(|_| number()).chain([TEST_NUMBER.to_owned()]).collect();

    // Its own directory: schemathesis reads a `schemathesis.toml` and writes reports where it runs.
    let workdir = std::env::temp_dir().join(format!("otp-serve-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).unwrap();
    let config = workdir.join("schemathesis.toml");
    let text = CONFIG
        .replace(
            "{ids}",
            &toml_strings(&[status_ids, check_ids.clone(), resend_ids.clone(), cancel_ids.clone()].concat()),
        )
        .replace("{check_ids}", &toml_strings(&check_ids))
        .replace("{resend_ids}", &toml_strings(&resend_ids))
        .replace("{cancel_ids}", &toml_strings(&cancel_ids))
        .replace("{numbers}", &toml_strings(&numbers))
        .replace("{codes}", &toml_strings(&[TEST_CODE.to_owned(), WRONG_CODE.to_owned()]));
    std::fs::write(&config, text).unwrap();

    let mut command = Command::new(&schemathesis);
    command
        .current_dir(&workdir)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis_checks.py"))
        .arg("--config-file")
        .arg(&config)
        .args(["run", &format!("{base}/openapi.json"), "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "all"])
        .args(["--max-examples", MAX_EXAMPLES, "--generation-deterministic", "--continue-on-failure"])
        .args(["--workers", "2", "--request-timeout", "10", "--no-color"]);
    let began = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("schemathesis runs");
    let took = began.elapsed();
    let _ = std::fs::remove_dir_all(&workdir);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Shown with a failure (and with --nocapture): what failed, and how to replay it.
    println!("schemathesis took {took:?}\n{text}");
    assert!(
        output.status.success(),
        "schemathesis found answers outside the document ({}): see its output above",
        output.status
    );
    let tested = operations_tested(&text).expect("a count of tested operations in schemathesis' summary");
    assert!(tested > 0, "schemathesis tested no operation");
}

/// The number of operations schemathesis' summary says it tested (`  Tested: 8`).
fn operations_tested(text: &str) -> Option<u32> {
    let summary = text.split("API Operations:").nth(1)?;
    summary.lines().find_map(|line| line.trim().strip_prefix("Tested:")).and_then(|n| n.trim().parse().ok())
}
