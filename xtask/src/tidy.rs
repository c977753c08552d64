//! Tidy checks: the architecture rules that a compiler does not enforce.

use std::path::Path;

use crate::codegen::gateway_crates;

pub fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    gateway_crates_are_independent(root, &mut problems);
    crate_roots_have_docs_and_forbid_unsafe(root, &mut problems);
    one_feature_compiles_one_gateway(root, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("tidy:\n  {}", problems.join("\n  ")))
    }
}

fn gateway_crates_are_independent(root: &Path, problems: &mut Vec<String>) {
    let crates = gateway_crates(root);
    for krate in &crates {
        let manifest = root.join("crates").join(krate).join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            problems.push(format!("crates/{krate}/Cargo.toml is missing"));
            continue;
        };
        let Ok(value) = text.parse::<toml::Table>() else {
            problems.push(format!("crates/{krate}/Cargo.toml does not parse"));
            continue;
        };
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = value.get(section).and_then(|d| d.as_table()) else { continue };
            for name in deps.keys() {
                if crates.contains(name) || name == "otp" {
                    problems.push(format!(
                        "crates/{krate} depends on {name} ([{section}]): gateway crates depend only on otp-core"
                    ));
                }
            }
        }
    }
}

fn crate_roots_have_docs_and_forbid_unsafe(root: &Path, problems: &mut Vec<String>) {
    let mut roots = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
        for entry in entries.flatten() {
            for file in ["src/lib.rs", "src/main.rs"] {
                let path = entry.path().join(file);
                if path.exists() {
                    roots.push(path);
                }
            }
        }
    }
    roots.push(root.join("xtask/src/main.rs"));
    roots.sort();
    for path in roots {
        let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{shown}: the crate root must start with crate docs (//!)"));
        }
        if !text.contains("#![forbid(unsafe_code)]") {
            problems.push(format!("{shown}: the crate root must say #![forbid(unsafe_code)]"));
        }
    }
}

/// `otp` with one gateway feature must pull in that gateway crate and no other: the point of
/// the umbrella's features. Asked of cargo itself, so a stray dependency cannot hide.
fn one_feature_compiles_one_gateway(root: &Path, problems: &mut Vec<String>) {
    let crates = gateway_crates(root);
    for krate in &crates {
        let feature = krate.trim_start_matches("otp-");
        let output = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(root)
            .args(["tree", "--locked", "--offline", "-p", "otp", "--no-default-features", "--features", feature])
            .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
            .output();
        let output = match output {
            Ok(output) if output.status.success() => output,
            Ok(output) => {
                problems.push(format!(
                    "cargo tree for otp --features {feature} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
                continue;
            }
            Err(error) => {
                problems.push(format!("cargo tree could not run: {error}"));
                continue;
            }
        };
        let tree = String::from_utf8_lossy(&output.stdout);
        let compiled: Vec<&str> = tree
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|n| crates.iter().any(|c| c == n))
            .collect();
        if !compiled.contains(&krate.as_str()) {
            problems.push(format!("otp --features {feature} does not compile {krate}"));
        }
        for other in compiled.iter().filter(|name| **name != krate.as_str()) {
            problems.push(format!("otp --features {feature} also compiles {other}: features must isolate gateways"));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_workspace_is_tidy() {
        super::check(&crate::workspace_root()).unwrap();
    }
}
