//! Tidy checks: the architecture rules that a compiler does not enforce.

use std::path::Path;

use crate::codegen::gateway_crates;

pub fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    gateway_crates_are_independent(root, &mut problems);
    crate_roots_have_docs_and_forbid_unsafe(root, &mut problems);
    one_feature_compiles_one_gateway(root, &mut problems);
    adding_a_gateway_is_documented(root, &mut problems);
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

/// ARCHITECTURE.md's "Adding a gateway" list is true: every file it names exists, and every
/// source or manifest file outside the gateway crates whose code (comments aside) names every
/// gateway is on it, so a new gateway cannot miss a place that enumerates them.
fn adding_a_gateway_is_documented(root: &Path, problems: &mut Vec<String>) {
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let Some(start) = architecture.find("## Adding a gateway") else {
        problems.push("ARCHITECTURE.md has no \"## Adding a gateway\" section".to_owned());
        return;
    };
    let section = &architecture[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let listed: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|token| token.ends_with(".rs") || token.ends_with(".toml"))
        // Repository paths only: not the new crate's own files (`spec/codes.toml`, `<name>`).
        .filter(|token| !token.contains('<'))
        .filter(|token| {
            *token == "Cargo.toml" || ["crates/", "tests/", "fuzz/", "xtask/"].iter().any(|d| token.starts_with(d))
        })
        .collect();
    for path in &listed {
        if !root.join(path).is_file() {
            problems.push(format!("ARCHITECTURE.md lists {path}, which does not exist"));
        }
    }
    let crates = gateway_crates(root);
    let names: Vec<&str> = crates.iter().map(|krate| krate.trim_start_matches("otp-")).collect();
    let mut files = Vec::new();
    collect_sources(root, root, &crates, &mut files);
    for file in files {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else { continue };
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//") && !line.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase();
        if names.iter().all(|name| code.contains(name)) && !listed.contains(&file.as_str()) {
            problems
                .push(format!("{file} names every gateway but is not in ARCHITECTURE.md's \"Adding a gateway\" list"));
        }
    }
}

/// `.rs` files and `Cargo.toml`s below `dir`, relative to `root`, outside build output and the
/// gateway crates themselves.
fn collect_sources(root: &Path, dir: &Path, gateway_crates: &[String], files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skip = name.starts_with('.') || name == "target" || gateway_crates.contains(&name);
            if !skip {
                collect_sources(root, &path, gateway_crates, files);
            }
        } else if name.ends_with(".rs") || name == "Cargo.toml" {
            if let Ok(relative) = path.strip_prefix(root) {
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
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
