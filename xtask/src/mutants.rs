//! `cargo xtask mutants`: mutation testing of the paths that decide what a customer receives.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::codegen::gateway_crates;

/// The cargo-mutants release this project's results are recorded with.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// The verifier's files, which its own unit tests and otp's end-to-end `tests/verifier.rs` (a
/// real Redis and the sandbox), `tests/lifecycle.rs` (a verification's whole life, events and
/// the sweeper), `tests/guard_attacks.rs` (each attack on the guard), `tests/telemetry.rs`
/// (its spans and counters) and `tests/validation.rs` (every gateway's request checked before
/// the guard) test together: their mutants run those tests, and only those.
const VERIFIER_SCOPE: [&str; 2] = ["crates/otp-verifier/src/*.rs", "crates/otp/src/verifier.rs"];
const VERIFIER_TESTS: [&str; 16] = [
    "--test-package",
    "otp-verifier",
    "--test-package",
    "otp",
    "--",
    "--lib",
    "--test",
    "verifier",
    "--test",
    "lifecycle",
    "--test",
    "guard_attacks",
    "--test",
    "telemetry",
    "--test",
    "validation",
];

fn is_verifier_file(file: &str) -> bool {
    file.starts_with("crates/otp-verifier/") || file == "crates/otp/src/verifier.rs"
}

/// What is mutated by default: the HTTP path, the operation seam, numbers, secrets, values,
/// codes and retries in otp-core, every gateway crate's requests and answer decoding, and the
/// verifier (sessions, guard, stores).
fn default_scope(root: &Path) -> Vec<String> {
    let mut files: Vec<String> =
        ["http.rs", "operation.rs", "mobile.rs", "secret.rs", "values.rs", "codes.rs", "retry.rs", "endpoint.rs"]
            .iter()
            .map(|file| format!("crates/otp-core/src/{file}"))
            .collect();
    for krate in gateway_crates(root) {
        files.push(format!("crates/{krate}/src/*.rs"));
    }
    files.extend(VERIFIER_SCOPE.iter().map(|f| (*f).to_owned()));
    files
}

pub fn run(root: &Path, files: &[&str]) -> Result<(), String> {
    ensure_installed(root)?;
    let scope: Vec<String> =
        if files.is_empty() { default_scope(root) } else { files.iter().map(|f| (*f).to_owned()).collect() };
    let (mut verifier, others): (Vec<String>, Vec<String>) = scope.into_iter().partition(|f| is_verifier_file(f));
    // cargo-mutants' unmutated baseline runs the tests of the mutated files' packages only: with
    // a file of otp in the set, `--test verifier` finds its target there too.
    if !verifier.is_empty() && !verifier.iter().any(|f| f == "crates/otp/src/verifier.rs") {
        verifier.push("crates/otp/src/verifier.rs".to_owned());
    }
    let mut table = BTreeMap::new();
    let mut all_finished = true;
    for (files, test_args) in [(others, &[][..]), (verifier, &VERIFIER_TESTS[..])] {
        if files.is_empty() {
            continue;
        }
        let (results, finished) = mutate(root, &files, test_args)?;
        table.extend(results);
        all_finished &= finished;
    }
    println!("\n| crate | caught | missed | timeout | unviable |\n|---|---|---|---|---|");
    for (krate, counts) in &table {
        println!("| {krate} | {} | {} | {} | {} |", counts[0], counts[1], counts[2], counts[3]);
    }
    // A timeout is a mutant the tests noticed (they stopped finishing), as cargo-mutants
    // counts it; only missed mutants survive.
    let survivors: usize = table.values().map(|c| c[1]).sum();
    if survivors > 0 {
        return Err(format!(
            "{survivors} mutants survived (mutants.out/missed.txt): add a test, or list a truly equivalent \
             one in .cargo/mutants.toml with its reason"
        ));
    }
    if !all_finished {
        println!("(cargo mutants reported timeouts: see mutants.out/timeout.txt)");
    }
    println!("xtask mutants: no unlisted survivor");
    Ok(())
}

/// One cargo-mutants run over `files`, with these test selections; its table per crate, and
/// whether it exited cleanly (it exits non-zero when a mutant survives or times out).
fn mutate(root: &Path, files: &[String], test_args: &[&str]) -> Result<(BTreeMap<String, [usize; 4]>, bool), String> {
    let mut args =
        vec!["mutants".to_owned(), "--no-shuffle".to_owned(), "--timeout-multiplier".to_owned(), "3".to_owned()];
    for file in files {
        args.push("--file".to_owned());
        args.push(file.clone());
    }
    args.extend(test_args.iter().map(|a| (*a).to_owned()));
    println!("$ cargo {}", args.join(" "));
    let status = Command::new("cargo").args(&args).current_dir(root).status().map_err(|e| e.to_string())?;
    Ok((summarise(&root.join("mutants.out"))?, status.success()))
}

fn ensure_installed(root: &Path) -> Result<(), String> {
    let installed = Command::new("cargo").args(["mutants", "--version"]).current_dir(root).output();
    if let Ok(output) = installed {
        if String::from_utf8_lossy(&output.stdout).contains(CARGO_MUTANTS_VERSION) {
            return Ok(());
        }
    }
    crate::run(root, "cargo", &["install", "cargo-mutants", "--locked", "--version", CARGO_MUTANTS_VERSION])
}

/// caught / missed / timeout / unviable per crate, from cargo-mutants' lists.
fn summarise(out: &Path) -> Result<BTreeMap<String, [usize; 4]>, String> {
    let mut table: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for (column, list) in ["caught.txt", "missed.txt", "timeout.txt", "unviable.txt"].iter().enumerate() {
        let text = std::fs::read_to_string(out.join(list)).unwrap_or_default();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let krate = line.strip_prefix("crates/").and_then(|rest| rest.split('/').next()).unwrap_or("other");
            table.entry(krate.to_owned()).or_default()[column] += 1;
        }
    }
    if table.is_empty() {
        return Err(format!("no results in {}", out.display()));
    }
    Ok(table)
}
