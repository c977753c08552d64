//! Project automation, in Rust so that it runs wherever cargo does.
//!
//! - `cargo xtask codegen [--check]`: `crates/otp-<gateway>/spec/codes.toml` →
//!   `src/generated/codes.rs` and `src/generated/codes.md`.
//! - `cargo xtask lint`: rustfmt, clippy (warnings denied, all targets, and `otp` with each
//!   gateway feature alone), `cargo doc` with warnings denied, codegen freshness, tidy checks.
//! - `cargo xtask bench [--quick | --long]`: build isolation (crates compiled per `otp` feature),
//!   then the release-mode benchmarks of `crates/otp-bench`: the SDK against raw reqwest at real
//!   gateway latency over TLS and under overload (the headline), then on loopback (overhead).
//!
//! - `cargo xtask mutants [FILE…]`: cargo-mutants (installed at a pinned version when missing)
//!   over the code that decides what goes on the wire and what a caller is told; prints caught /
//!   missed / timeout / unviable per crate and fails on a survivor not listed as equivalent in
//!   `.cargo/mutants.toml`. Slow: run it before a release and after changing those files.
//!
//! `codegen --check` and the tidy checks also run as `#[test]`s, so `cargo test` catches them.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod codegen;
mod mutants;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen::run(&workspace_root(), codegen::Mode::Write),
        ["codegen", "--check"] => codegen::run(&workspace_root(), codegen::Mode::Check),
        ["lint"] => lint(&workspace_root()),
        ["bench"] => bench(&workspace_root(), None),
        ["bench", flag @ ("--quick" | "--long")] => bench(&workspace_root(), Some(flag)),
        ["mutants", files @ ..] => mutants::run(&workspace_root(), files),
        _ => Err("usage: cargo xtask codegen [--check] | lint | bench [--quick | --long] | mutants [FILE…]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn lint(root: &Path) -> Result<(), String> {
    // A toolchain without rustfmt or clippy fails here rather than skipping the check.
    run(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    run(root, "cargo", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    // Each gateway alone, as a consumer with one feature compiles it.
    for krate in codegen::gateway_crates(root) {
        let features = format!("{},rustls", krate.trim_start_matches("otp-"));
        let args = ["clippy", "-p", "otp", "--lib", "--locked", "--no-default-features", "--features", &features];
        run(root, "cargo", &[&args[..], &["--", "-D", "warnings"]].concat())?;
    }
    // Documentation builds without a warning (broken links included).
    run_with(root, &[("RUSTDOCFLAGS", "-D warnings")], "cargo", &["doc", "--workspace", "--no-deps", "--locked"])?;
    codegen::run(root, codegen::Mode::Check)?;
    tidy::check(root)?;
    println!("xtask lint: fmt, clippy (workspace and each gateway alone), docs, codegen and tidy are clean");
    Ok(())
}

fn bench(root: &Path, flag: Option<&str>) -> Result<(), String> {
    let paytm = crates_compiled(root, "paytm,rustls")?;
    let full = crates_compiled(root, "full,rustls")?;
    println!("build isolation: a consumer of otp with only `paytm` compiles {paytm} crates; with `full`, {full}");
    let mut args = vec!["run", "--release", "--locked", "-p", "otp-bench", "--"];
    args.extend(flag);
    run(root, "cargo", &args)
}

/// The packages (dependencies included) a consumer of `otp` with these features compiles.
fn crates_compiled(root: &Path, features: &str) -> Result<usize, String> {
    let output = Command::new("cargo")
        .current_dir(root)
        .args(["tree", "--locked", "-p", "otp", "--no-default-features", "--features", features])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .map_err(|e| format!("could not run cargo tree: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo tree failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let unique: std::collections::BTreeSet<&str> =
        text.lines().map(|line| line.trim_end_matches(" (*)").trim()).filter(|line| !line.is_empty()).collect();
    Ok(unique.len())
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    run_with(root, &[], program, args)
}

fn run_with(root: &Path, env: &[(&str, &str)], program: &str, args: &[&str]) -> Result<(), String> {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .envs(env.iter().copied())
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}
