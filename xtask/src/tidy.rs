//! Tidy checks: the architecture rules that a compiler does not enforce.

use std::path::Path;

use crate::codegen::gateway_crates;

pub fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    gateway_crates_are_independent(root, &mut problems);
    crate_roots_have_docs_and_forbid_unsafe(root, &mut problems);
    one_feature_compiles_one_gateway(root, &mut problems);
    adding_a_gateway_is_documented(root, PARTIAL_GATEWAY_LISTS, &mut problems);
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
            // Itself is allowed: a gateway crate's own tests turn its features on that way.
            for name in deps.keys().filter(|name| *name != krate) {
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

/// Files outside the gateway crates that name some gateways but not all, each with why it is
/// allowed for now. An entry that no longer does is a problem too, so the list only shrinks.
const PARTIAL_GATEWAY_LISTS: &[(&str, &str)] = &[
    ("crates/otp-core/src/codes.rs", "its tests tag code tables with two gateways as examples"),
    ("crates/otp-core/src/endpoint.rs", "its tests parse three gateways' documented hosts as examples"),
    ("crates/otp-core/tests/http_path.rs", "tags its transports and tables with two gateways as examples"),
    ("crates/otp/tests/guard_attacks.rs", "each attack runs through one gateway's client"),
    ("crates/otp/tests/telemetry.rs", "each case is one gateway's documented answer"),
    ("crates/otp/tests/validation.rs", "besides its every-gateway tests, two gateways' own extras are tested"),
    ("crates/otp/tests/verify_flow.rs", "besides its every-gateway tests, each failure case is one gateway's"),
];

/// ARCHITECTURE.md's "Adding a gateway" list is true, and no place enumerates gateways in part:
/// every file it names exists; every source or manifest file outside the gateway crates whose
/// code names every gateway is on it; and a file whose code names two or more gateways names
/// them all (a file with an arm, a row or a fixture per gateway that misses one is how a new
/// gateway is forgotten). Naming one gateway (its own file, a test of one gateway) is fine.
fn adding_a_gateway_is_documented(root: &Path, partial_allowed: &[(&str, &str)], problems: &mut Vec<String>) {
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
    files.sort();
    let mut partial_seen: Vec<&str> = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else { continue };
        let named = gateways_named(&code(&file, &text), &names);
        if named.len() == names.len() {
            if !listed.contains(&file.as_str()) {
                problems.push(format!(
                    "{file} names every gateway but is not in ARCHITECTURE.md's \"Adding a gateway\" list"
                ));
            }
        } else if named.len() >= 2 {
            if let Some((allowed, _)) = partial_allowed.iter().find(|(allowed, _)| *allowed == file) {
                partial_seen.push(allowed);
                continue;
            }
            let missing: Vec<&str> = names.iter().filter(|name| !named.contains(name)).copied().collect();
            problems.push(format!(
                "{file} names {} but not {}: a file that names two gateways names them all (one arm, row or \
                 fixture each), or goes through a list of them (`Gateway::ALL`, a registry)",
                named.join(", "),
                missing.join(", ")
            ));
        }
    }
    for (file, _) in partial_allowed.iter().filter(|(file, _)| !partial_seen.contains(file)) {
        problems.push(format!("{file} no longer names some gateways but not all: take it off PARTIAL_GATEWAY_LISTS"));
    }
}

/// The gateways `code` names: a gateway's name anywhere in it, in any case — an identifier
/// (`PhonePe`, `Gateway::IServeU`, `phonepe_salt_key`), a crate (`otp_paytm`, `otp-aopay`), a
/// feature or a string (`"paytm"`, a route's name in a message).
fn gateways_named<'a>(code: &str, names: &[&'a str]) -> Vec<&'a str> {
    let code = code.to_lowercase();
    names.iter().filter(|name| code.contains(**name)).copied().collect()
}

/// What of a file can name a gateway: code and string literals, not comments. In Rust, `//`
/// and `/* */` comments (doc comments included) and `#[doc = …]` attributes go; in TOML, `#`
/// comments. Strings are read as strings, so `//` in a URL stays.
fn code(file: &str, text: &str) -> String {
    if file.ends_with(".toml") {
        return text.lines().map(toml_code).collect::<Vec<_>>().join("\n");
    }
    let mut code = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(comment) = rest.strip_prefix("//") {
            rest = comment.find('\n').map_or("", |end| &comment[end..]);
        } else if rest.starts_with("/*") {
            rest = &rest[block_comment_len(rest)..];
        } else if rest.starts_with("#[doc") || rest.starts_with("#![doc") {
            rest = &rest[attribute_len(rest)..];
        } else if let Some(len) = string_len(rest) {
            code.push_str(&rest[..len]);
            rest = &rest[len..];
        } else {
            // A character literal's quote, or a lifetime's: one character, so `'"'` cannot
            // open a string.
            let len = if c == '\'' { char_literal_len(rest) } else { c.len_utf8() };
            code.push_str(&rest[..len]);
            rest = &rest[len..];
        }
    }
    code
}

/// The length of the attribute `text` starts with, to its `]` outside strings.
fn attribute_len(text: &str) -> usize {
    let mut index = 0;
    while let Some(c) = text[index..].chars().next() {
        if let Some(len) = string_len(&text[index..]) {
            index += len;
        } else if c == ']' {
            return index + 1;
        } else {
            index += c.len_utf8();
        }
    }
    text.len()
}

/// The length of the (nested) block comment `text` starts with, or of the rest if unclosed.
fn block_comment_len(text: &str) -> usize {
    let mut depth = 0usize;
    let mut index = 0;
    while index < text.len() {
        if text[index..].starts_with("/*") {
            depth += 1;
            index += 2;
        } else if text[index..].starts_with("*/") {
            depth -= 1;
            index += 2;
            if depth == 0 {
                return index;
            }
        } else {
            index += text[index..].chars().next().map_or(1, char::len_utf8);
        }
    }
    text.len()
}

/// The length of the string literal `text` starts with (`"…"`, `b"…"`, `r#"…"#`, `br"…"`),
/// if it starts with one.
fn string_len(text: &str) -> Option<usize> {
    let prefix = ["br", "r", "b", ""].into_iter().find(|prefix| {
        text.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('"') || (prefix.ends_with('r') && rest.starts_with('#')))
    })?;
    let after = &text[prefix.len()..];
    if prefix.ends_with('r') {
        let hashes = after.len() - after.trim_start_matches('#').len();
        let body = after[hashes..].strip_prefix('"')?;
        let close = format!("\"{}", "#".repeat(hashes));
        let end = body.find(&close).map_or(body.len(), |end| end + close.len());
        return Some(prefix.len() + hashes + 1 + end);
    }
    let body = &after[1..];
    let mut escaped = false;
    for (index, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(prefix.len() + 1 + index + 1),
            _ => {}
        }
    }
    Some(text.len())
}

/// The length of the character literal `text` starts with (`'"'`, `'\''`), or 1 for a lifetime.
fn char_literal_len(text: &str) -> usize {
    let body = &text[1..];
    let mut chars = body.char_indices();
    let literal_end = match chars.next() {
        // An escape: the closing quote comes after the backslash and the escaped character.
        Some((_, '\\')) => body.get(2..).and_then(|rest| rest.find('\'')).map(|end| 2 + end),
        Some((_, c)) => body[c.len_utf8()..].starts_with('\'').then_some(c.len_utf8()),
        None => None,
    };
    literal_end.map_or(1, |end| 1 + end + 1)
}

/// A TOML line without its comment (a `#` outside a string).
fn toml_code(line: &str) -> &str {
    let mut quote = None;
    for (index, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..index],
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            _ => {}
        }
    }
    line
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
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        check(&crate::workspace_root()).unwrap();
    }

    #[test]
    fn a_file_naming_some_gateways_but_not_all_is_a_problem_and_so_is_a_stale_exception() {
        let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        for name in ["alphapay", "betapay", "gammapay"] {
            write(&format!("crates/otp-{name}/spec/codes.toml"), "");
            // The gateway crates themselves may name others.
            write(&format!("crates/otp-{name}/src/lib.rs"), "use otp_alphapay; use otp_betapay;");
        }
        write("ARCHITECTURE.md", "## Adding a gateway\n\n- `crates/x/src/all.rs`: one arm each\n");
        write("crates/x/src/all.rs", "match g { AlphaPay => 1, BetaPay => 2, GammaPay => 3 }");
        write("crates/x/src/unlisted.rs", "const ROUTES: [&str; 3] = [\"alphapay\", \"betapay\", \"gammapay\"];");
        write("crates/x/src/two.rs", "match g { AlphaPay => 1, GammaPay => 3 }");
        write("crates/x/src/allowed.rs", "fn f() { AlphaPay; BetaPay }");
        write("crates/x/src/one.rs", "fn f() { BetaPay }");
        write("crates/x/src/docs.rs", "//! AlphaPay and BetaPay\nfn f() {}");
        let mut problems = Vec::new();
        let allowed = [("crates/x/src/allowed.rs", "why"), ("crates/x/src/fixed.rs", "why")];
        adding_a_gateway_is_documented(&root, &allowed, &mut problems);
        let _ = std::fs::remove_dir_all(&root);
        let files: Vec<&str> = problems.iter().filter_map(|problem| problem.split(' ').next()).collect();
        assert_eq!(
            files,
            ["crates/x/src/two.rs", "crates/x/src/unlisted.rs", "crates/x/src/fixed.rs"],
            "{problems:#?}"
        );
        assert!(problems[0].contains("names alphapay, gammapay but not betapay"), "{}", problems[0]);
    }

    // Made-up gateways: this file names no real one.
    const NAMES: [&str; 4] = ["alphapay", "betapay", "gammapay", "deltapay"];

    fn named(file: &str, text: &str) -> Vec<&'static str> {
        gateways_named(&code(file, text), &NAMES)
    }

    #[test]
    fn code_names_gateways_by_identifier_crate_feature_or_string_in_any_case() {
        assert_eq!(named("a.rs", "Gateway::AlphaPay => 1, Gateway::GammaPay => 2"), ["alphapay", "gammapay"]);
        assert_eq!(named("a.rs", "use otp_betapay::Client; let deltapay_id = 1;"), ["betapay", "deltapay"]);
        assert_eq!(named("a.rs", r#"#[cfg(feature = "deltapay")] fn f() { g("BETAPAY") }"#), ["betapay", "deltapay"]);
        let manifest = "otp-alphapay = { path = \"x\" } # and betapay\nb = \"a#gammapay\"";
        assert_eq!(named("Cargo.toml", manifest), ["alphapay", "gammapay"]);
    }

    #[test]
    fn comments_and_docs_name_no_gateway_but_strings_keep_their_slashes() {
        let text = "//! AlphaPay and BetaPay\n/// GammaPay\nfn f() {} // DeltaPay\n\
                    /* AlphaPay /* BetaPay */ GammaPay */\n#[doc = \"[DeltaPay] \\\"]\\\" alphapay\"]\n";
        assert!(named("a.rs", text).is_empty(), "{:?}", code("a.rs", text));
        assert_eq!(named("a.rs", r#"let url = "http://betapay.com/x"; // AlphaPay"#), ["betapay"]);
        assert_eq!(named("a.rs", r##"let s = r#"a "quoted" // alphapay"#; // deltapay"##), ["alphapay"]);
        // A quote in a character literal opens no string; a lifetime is not a literal.
        assert!(named("a.rs", "let q = '\"'; fn f<'a>(x: &'a str) {} // betapay \"gammapay\"").is_empty());
        assert_eq!(named("a.rs", "let e = '\\''; let s = \"deltapay\\\" // its string\"; // betapay"), ["deltapay"]);
        assert!(named("Cargo.toml", "# otp-alphapay and otp-betapay\n").is_empty());
    }
}
