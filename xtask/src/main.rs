//! Project automation, in Rust so that it runs wherever cargo does.
//!
//! - `cargo xtask codegen [--check]`: `crates/otp-<gateway>/spec/codes.toml` →
//!   `src/generated/codes.rs` and `src/generated/codes.md`.
//! - `cargo xtask lint`: rustfmt, clippy (warnings denied, all targets) and the tidy checks.
//!
//! `codegen --check` and the tidy checks also run as `#[test]`s, so `cargo test` catches them.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod codegen;
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
        _ => Err("usage: cargo xtask codegen [--check] | lint".to_owned()),
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
    run(root, "cargo", &["fmt", "--all", "--", "--check"])?;
    run(root, "cargo", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])?;
    codegen::run(root, codegen::Mode::Check)?;
    tidy::check(root)?;
    println!("xtask lint: fmt, clippy, codegen and tidy are clean");
    Ok(())
}

fn run(root: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
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
