//! End to end: the built `otp` binary against the sandbox — every gateway, every magic number's
//! exit code and JSON, invalid input and missing credentials (exit 2, nothing sent), a closed
//! port (exit 4), `otp sandbox`, and logs at TRACE free of secrets and full numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const CREDENTIAL_VARS: [&str; 9] = [
    "OTP_PHONEPE_MERCHANT_ID",
    "OTP_PHONEPE_SALT_KEY",
    "OTP_PHONEPE_SALT_INDEX",
    "OTP_PAYTM_CLIENT_ID",
    "OTP_PAYTM_CLIENT_SECRET",
    "OTP_ISERVEU_CLIENT_ID",
    "OTP_ISERVEU_CLIENT_SECRET",
    "OTP_ISERVEU_USERNAME",
    "OTP_AOPAY_REGISTRATION_ID",
];

const GATEWAYS: [&str; 4] = ["phonepe", "paytm", "iserveu", "aopay"];

/// The gateway flags of a valid request (besides `--mobile`).
fn gateway_flags(gateway: &str) -> Vec<&'static str> {
    match gateway {
        "phonepe" => {
            vec!["--email", "asha@example.com", "--name", "Asha", "--request-type", "wallet", "--device-id", "d-42"]
        }
        "paytm" => vec!["--device-id", "device-0042", "--scope", "paytm", "--scope", "wallet"],
        "iserveu" => vec![
            "--otp-type",
            "registration",
            "--ovd-type",
            "AADHAAR",
            "--ovd-data",
            "765386439745",
            "--lat-long",
            "12.97,77.59",
            "--public-ip",
            "203.0.113.7",
        ],
        "aopay" => vec![
            "--bene-id",
            "BENE1001",
            "--txn-type",
            "imps",
            "--amount",
            "2500",
            "--pincode",
            "560001",
            "--address",
            "12 MG Road, Bengaluru",
            "--dob",
            "20/08/1990",
            "--latitude",
            "12.9716",
            "--longitude",
            "77.5946",
        ],
        other => panic!("no such gateway {other}"),
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exactly one JSON object on stdout.
    fn json(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "stdout must be one JSON line: {:?} (stderr {:?})", self.stdout, self.stderr);
        let value: Value = serde_json::from_str(lines[0]).unwrap();
        assert!(value.is_object());
        value
    }
}

/// `otp` with a clean environment: no credentials, no logs, unless a test adds them.
fn otp(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_otp"));
    command.args(args).env_remove("RUST_LOG");
    for var in CREDENTIAL_VARS {
        command.env_remove(var);
    }
    command
}

fn run(command: &mut Command) -> Run {
    let output = command.output().unwrap();
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn send(gateway: &str, mobile: &str, extra: &[&str]) -> Command {
    let mut args = vec!["send", gateway, "--mobile", mobile];
    args.extend(gateway_flags(gateway));
    args.extend(extra);
    otp(&args)
}

/// A loopback port that accepts nothing on its own: counts whether anyone connected.
struct Tripwire(TcpListener);

impl Tripwire {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self(listener)
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.0.local_addr().unwrap())
    }

    fn was_contacted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

fn sandbox_env(command: &mut Command) -> &mut Command {
    command
        .env("OTP_PHONEPE_MERCHANT_ID", "SANDBOXMERCHANT")
        .env("OTP_PHONEPE_SALT_KEY", "sandbox-salt-key")
        .env("OTP_PHONEPE_SALT_INDEX", "1")
        .env("OTP_PAYTM_CLIENT_ID", "sandbox-client")
        .env("OTP_PAYTM_CLIENT_SECRET", "sandbox-secret")
        .env("OTP_ISERVEU_CLIENT_ID", "sandbox-client")
        .env("OTP_ISERVEU_CLIENT_SECRET", "sandbox-secret")
        .env("OTP_ISERVEU_USERNAME", "sandboxuser")
        .env("OTP_AOPAY_REGISTRATION_ID", "AOP-SANDBOX")
}

#[test]
fn every_gateway_sends_through_the_embedded_sandbox() {
    let expected_codes = [("phonepe", "SUCCESS"), ("paytm", "BE1400001"), ("iserveu", "0"), ("aopay", "1")];
    for (gateway, code) in expected_codes {
        let run = run(&mut send(gateway, "+91 98765 43210", &["--sandbox", "--json"]));
        assert_eq!(run.code, 0, "{gateway}: {} {}", run.stdout, run.stderr);
        let body = run.json();
        assert_eq!(body["gateway"], gateway);
        assert_eq!(body["outcome"], "sent");
        assert_eq!(body["provider_code"], code);
        assert_eq!(body["http_status"], 200);
        assert!(body["message"].is_string());
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{body}");
        match gateway {
            "phonepe" => assert!(body["reference"].as_str().unwrap().starts_with("OTP")),
            "paytm" => assert!(!body["reference"].as_str().unwrap().is_empty()),
            "iserveu" => assert_eq!(body["reference"], Value::Null, "a registration OTP without a reference"),
            _ => assert_eq!(body["reference"].as_str().unwrap().len(), 9),
        }
        assert!(run.stderr.is_empty(), "{gateway}: {}", run.stderr);
    }
}

/// Backends often reach the internet through a proxy named in the environment; the embedded
/// sandbox and a local base URL are on this machine and must not be sent to it.
#[test]
fn a_proxy_in_the_environment_is_not_used_for_loopback() {
    let proxy = Tripwire::new();
    let sandbox_run = run(send("phonepe", "9876543210", &["--sandbox", "--json"])
        .env("HTTP_PROXY", proxy.base_url())
        .env("HTTPS_PROXY", proxy.base_url())
        .env("ALL_PROXY", proxy.base_url())
        .env("http_proxy", proxy.base_url())
        .env("https_proxy", proxy.base_url())
        .env("all_proxy", proxy.base_url())
        .env_remove("NO_PROXY")
        .env_remove("no_proxy"));
    assert_eq!(sandbox_run.code, 0, "{} {}", sandbox_run.stdout, sandbox_run.stderr);
    assert_eq!(sandbox_run.json()["outcome"], "sent");
    assert!(!proxy.was_contacted(), "loopback traffic went to the proxy");
}

#[test]
fn human_output_names_the_outcome_and_masks_the_number() {
    let run = run(&mut send("phonepe", "9876543210", &["--sandbox"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("OTP sent through phonepe to XXXXXX3210\n"), "{}", run.stdout);
    assert!(run.stdout.contains("provider code: SUCCESS (HTTP 200)"));
    assert!(!run.stdout.contains("9876543210"));

    let failed = self::run(&mut send("paytm", "9000000002", &["--sandbox"]));
    assert_eq!(failed.code, 3);
    assert!(failed.stdout.is_empty());
    assert!(failed.stderr.contains("blocked (paytm)") && failed.stderr.contains("BE1424001"), "{}", failed.stderr);
}

#[test]
fn every_magic_number_has_its_exit_code_and_json() {
    // (mobile, gateway, exit, kind or outcome, provider_code, http_status, retryable)
    let table: &[(&str, &str, i32, &str, Value, u16, bool)] = &[
        ("9000000001", "phonepe", 3, "rate_limited", json!("OTP_LIMIT_EXCEEDED"), 200, false),
        ("9000000001", "paytm", 3, "rate_limited", json!("BE1425006"), 200, false),
        ("9000000001", "iserveu", 3, "rejected", json!("1"), 200, false),
        ("9000000001", "aopay", 3, "rejected", json!("2"), 200, false),
        ("9000000002", "phonepe", 3, "blocked", json!("USER_BLOCKED"), 200, false),
        ("9000000002", "paytm", 3, "blocked", json!("BE1424001"), 200, false),
        ("9000000002", "iserveu", 3, "rejected", json!("1"), 200, false),
        ("9000000002", "aopay", 3, "rejected", json!("2"), 200, false),
        ("9000000003", "phonepe", 4, "provider_unavailable", json!("INTERNAL_SERVER_ERROR"), 500, true),
        ("9000000003", "paytm", 4, "provider_unavailable", json!("BE1426003"), 500, true),
        ("9000000003", "iserveu", 4, "provider_unavailable", Value::Null, 500, true),
        ("9000000003", "aopay", 4, "provider_unavailable", Value::Null, 500, true),
        ("9000000005", "phonepe", 3, "rate_limited", json!("TOO_MANY_REQUESTS"), 429, true),
        ("9000000005", "paytm", 3, "rate_limited", json!("BE1425004"), 200, false),
        ("9000000005", "iserveu", 3, "rejected", json!("1"), 200, false),
        ("9000000005", "aopay", 0, "sent_for_registration", json!("0"), 200, false),
        ("9000000006", "phonepe", 4, "provider_unavailable", Value::Null, 502, true),
        ("9000000006", "paytm", 4, "provider_unavailable", Value::Null, 502, true),
        ("9000000006", "iserveu", 4, "provider_unavailable", Value::Null, 502, true),
        ("9000000006", "aopay", 4, "provider_unavailable", Value::Null, 502, true),
    ];
    for (mobile, gateway, exit, kind, code, status, retryable) in table {
        let run = run(&mut send(gateway, mobile, &["--sandbox", "--json"]));
        let body = run.json();
        assert_eq!(run.code, *exit, "{mobile} {gateway}: {body}");
        assert_eq!(body["gateway"], *gateway);
        if *exit == 0 {
            assert_eq!(body["outcome"], *kind);
            assert_eq!(body["provider_code"], *code);
            assert!(body["reference"].is_string(), "{body}");
            continue;
        }
        let error = &body["error"];
        assert_eq!(error["kind"], *kind, "{mobile} {gateway}: {body}");
        assert_eq!(error["provider_code"], *code, "{mobile} {gateway}: {body}");
        assert_eq!(error["http_status"], *status, "{mobile} {gateway}: {body}");
        assert_eq!(error["retryable"], *retryable, "{mobile} {gateway}: {body}");
        assert!(error["message"].is_string());
        assert_eq!(error.as_object().unwrap().len(), 5, "{body}");
    }
}

#[test]
fn the_slow_magic_number_times_out_with_exit_4() {
    for gateway in GATEWAYS {
        let started = std::time::Instant::now();
        let run = run(&mut send(gateway, "9000000004", &["--sandbox", "--json", "--timeout", "1"]));
        assert_eq!(run.code, 4, "{gateway}: {}", run.stdout);
        let error = &run.json()["error"];
        assert_eq!(error["kind"], "timeout");
        assert_eq!(error["provider_code"], Value::Null);
        assert_eq!(error["http_status"], Value::Null);
        assert_eq!(error["retryable"], false, "a timed-out send may have gone out: never retryable");
        assert!(started.elapsed().as_secs_f64() < 10.0);
    }
}

/// A valid AOPay command line (with `--mobile`) with one flag's value replaced.
fn aopay_flags_with(flag: &str, value: &'static str) -> Vec<&'static str> {
    let mut flags = vec!["--mobile", "9876543210"];
    flags.extend(gateway_flags("aopay"));
    let at = flags.iter().position(|f| *f == flag).expect("a flag of aopay") + 1;
    flags[at] = value;
    flags
}

#[test]
fn invalid_input_exits_2_and_sends_nothing() {
    let tripwire = Tripwire::new();
    let base = tripwire.base_url();
    let long_device_id = "d".repeat(65);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("phonepe", vec!["--mobile", "12345"]),
        ("phonepe", vec!["--mobile", "9876543210", "--device-id", &long_device_id]),
        ("phonepe", vec!["--mobile", "9876543210", "--request-type", "loan"]),
        ("paytm", vec!["--mobile", "9876543210", "--device-id", "d"]),
        ("paytm", vec!["--mobile", "9876543210", "--device-id", "", "--scope", "paytm"]),
        ("iserveu", vec!["--mobile", "9876543210", "--otp-type", "registration", "--ovd-type", "AADHAAR"]),
        (
            "iserveu",
            vec![
                "--mobile",
                "9876543210",
                "--otp-type",
                "2",
                "--ovd-type",
                "A",
                "--external-ref",
                "R1",
                "--amount",
                "5",
            ],
        ),
        ("iserveu", vec!["--mobile", "9876543210", "--otp-type", "3", "--ovd-type", "A"]),
        (
            "iserveu",
            vec![
                "--mobile",
                "9876543210",
                "--otp-type",
                "2",
                "--ovd-type",
                "A",
                "--external-ref",
                "REF123456",
                "--amount",
                "-5",
            ],
        ),
        ("aopay", aopay_flags_with("--txn-type", "upi")),
        ("aopay", aopay_flags_with("--pincode", "56000")),
        ("aopay", aopay_flags_with("--dob", "31/02/2000")),
        ("aopay", aopay_flags_with("--dob", "2000-08-20")),
        ("aopay", aopay_flags_with("--amount", "-1")),
        ("aopay", aopay_flags_with("--latitude", " 12.97")),
    ];
    for (gateway, flags) in cases {
        let mut args = vec!["send", gateway];
        args.extend(flags.iter().copied());
        args.extend(["--json", "--base-url", base.as_str()]);
        let run = run(sandbox_env(&mut otp(&args)));
        assert_eq!(run.code, 2, "{gateway} {flags:?}: {}", run.stdout);
        let body = run.json();
        assert_eq!(body["gateway"], gateway);
        assert_eq!(body["error"]["kind"], "invalid_request", "{body}");
        assert_eq!(body["error"]["http_status"], Value::Null);
        assert!(!tripwire.was_contacted(), "{gateway} {flags:?} opened a connection");
    }
    // Unknown gateway and bad usage without --json: clap's text on stderr, exit 2.
    let run = run(&mut otp(&["send", "razorpay", "--mobile", "9876543210"]));
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty() && run.stderr.contains("razorpay"), "{}", run.stderr);
}

#[test]
fn missing_credentials_name_every_variable_and_mention_the_sandbox() {
    let tripwire = Tripwire::new();
    let base = tripwire.base_url();
    let expected: [(&str, &[&str]); 4] = [
        ("phonepe", &["OTP_PHONEPE_MERCHANT_ID", "OTP_PHONEPE_SALT_KEY", "OTP_PHONEPE_SALT_INDEX"]),
        ("paytm", &["OTP_PAYTM_CLIENT_ID", "OTP_PAYTM_CLIENT_SECRET"]),
        ("iserveu", &["OTP_ISERVEU_CLIENT_ID", "OTP_ISERVEU_CLIENT_SECRET", "OTP_ISERVEU_USERNAME"]),
        ("aopay", &["OTP_AOPAY_REGISTRATION_ID"]),
    ];
    for (gateway, vars) in expected {
        let json = run(&mut send(gateway, "9876543210", &["--json", "--base-url", &base]));
        assert_eq!(json.code, 2);
        let message = json.json()["error"]["message"].as_str().unwrap().to_owned();
        let human = run(&mut send(gateway, "9876543210", &["--base-url", &base]));
        assert_eq!(human.code, 2);
        for text in [&message, &human.stderr] {
            for var in vars {
                assert!(text.contains(var), "{gateway}: {text} lacks {var}");
            }
            assert!(text.contains("--sandbox"), "{text}");
        }
        assert!(!tripwire.was_contacted());
    }
    // Only what is missing is named.
    let run = run(send("paytm", "9876543210", &["--json", "--base-url", &base]).env("OTP_PAYTM_CLIENT_ID", "me"));
    let message = run.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("OTP_PAYTM_CLIENT_SECRET") && !message.contains("OTP_PAYTM_CLIENT_ID"), "{message}");
    // A salt index that is not a positive integer is a configuration error too.
    let run = self::run(
        sandbox_env(&mut send("phonepe", "9876543210", &["--json", "--base-url", &base]))
            .env("OTP_PHONEPE_SALT_INDEX", "one"),
    );
    assert_eq!(run.code, 2);
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("OTP_PHONEPE_SALT_INDEX"));
    assert!(!tripwire.was_contacted());
}

#[test]
fn a_closed_port_exits_4_transport_and_retryable() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    for gateway in GATEWAYS {
        let run = run(sandbox_env(&mut send(gateway, "9876543210", &["--json", "--base-url", &base])));
        assert_eq!(run.code, 4, "{gateway}: {}", run.stdout);
        let error = &run.json()["error"];
        assert_eq!(error["kind"], "transport");
        assert_eq!(error["retryable"], true, "nothing was sent");
        assert_eq!(error["provider_code"], Value::Null);
        assert_eq!(error["http_status"], Value::Null);
    }
}

#[test]
fn a_remote_plain_http_base_is_refused_unless_allowed() {
    // 192.0.2.0/24 is TEST-NET-1: never routed, so an allowed attempt fails to connect instead.
    let run = run(sandbox_env(&mut send("paytm", "9876543210", &["--json", "--base-url", "http://192.0.2.1"])));
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.json()["error"]["message"].as_str().unwrap().contains("https"), "{}", run.stdout);
    let allowed = self::run(sandbox_env(&mut send(
        "paytm",
        "9876543210",
        &["--json", "--base-url", "http://192.0.2.1", "--allow-http", "--timeout", "1"],
    )));
    assert_eq!(allowed.code, 4, "{}", allowed.stdout);
}

/// A child process that is killed if the test fails before stopping it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn otp_sandbox_serves_the_gateways_until_terminated() {
    let mut server = Server(otp(&["sandbox", "--addr", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    let base = first_line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first_line}");

    for gateway in GATEWAYS {
        let run = run(sandbox_env(&mut send(gateway, "9876543210", &["--json", "--base-url", &base])));
        assert_eq!(run.code, 0, "{gateway}: {} {}", run.stdout, run.stderr);
    }
    let inbox: Value = serde_json::from_str(&http_get(&base, "/__sandbox/otps?mobile=9876543210")).unwrap();
    assert_eq!(inbox["otps"].as_array().unwrap().len(), GATEWAYS.len());

    let killed = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = server.0.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
}

/// A plain HTTP/1.1 GET over a std socket; returns the body.
fn http_get(base: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[test]
fn trace_logs_carry_no_secret_identity_number_or_full_mobile_number() {
    let secrets = [
        "sandbox-salt-key",
        "sandbox-secret",
        "c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ", // base64("sandbox-client:sandbox-secret")
        "765386439745",
        "7653 8643 9745",
        "9876543210",
        "###1", // the tail of an X-VERIFY value
    ];
    let mut references = Vec::new();
    let mut all_logs = String::new();
    for gateway in GATEWAYS {
        for mobile in ["9876543210", "9000000001", "9000000006"] {
            let run = run(send(gateway, mobile, &["--sandbox", "--json"]).env("RUST_LOG", "trace"));
            assert!(run.code == 0 || run.code == 3 || run.code == 4, "{gateway} {mobile}: {}", run.stdout);
            if let Some(reference) = run.json()["reference"].as_str() {
                references.push(reference.to_owned());
            }
            all_logs.push_str(&run.stderr);
        }
    }
    assert!(all_logs.contains("otp.send"), "the send span is logged at TRACE:\n{all_logs}");
    assert!(all_logs.contains("XXXXXX3210"), "numbers are logged masked");
    for secret in secrets.iter().map(|s| s.to_string()).chain(references) {
        assert!(!all_logs.contains(&secret), "{secret} leaked into the logs");
    }
    // No 64-hex-digit run: an X-VERIFY signature.
    let hex_run = all_logs.split(|c: char| !c.is_ascii_hexdigit()).any(|word| word.len() >= 64);
    assert!(!hex_run, "something like a signature leaked");
    // The Aadhaar number of the iServeU registration shows masked, if at all.
    assert!(!all_logs.contains("86439745"));
}

// ------------------------------------------------------------------ the second step

/// A sandbox served from this test process (so a test can set its validity and read its
/// inbox), with the runtime that serves it.
struct LibrarySandbox {
    runtime: tokio::runtime::Runtime,
    sandbox: otp_sandbox::Sandbox,
}

impl LibrarySandbox {
    fn start(config: otp_sandbox::SandboxConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let sandbox = runtime.block_on(otp_sandbox::Sandbox::start(config)).unwrap();
        Self { runtime, sandbox }
    }

    fn base_url(&self) -> String {
        self.sandbox.base_url()
    }

    fn latest_code(&self, mobile: &str) -> String {
        let _guard = self.runtime.enter();
        self.sandbox.otps(mobile)[0].otp.clone()
    }
}

/// `otp send <gateway> … --json` against `base`; the answer's reference.
fn send_for_reference(base: &str, gateway: &str, mobile: &str) -> Option<String> {
    let run = run(sandbox_env(&mut send(gateway, mobile, &["--json", "--base-url", base])));
    assert_eq!(run.code, 0, "{gateway}: {} {}", run.stdout, run.stderr);
    run.json()["reference"].as_str().map(str::to_owned)
}

fn verify_command(gateway: &str, base: &str, reference: Option<&str>, mobile: &str, code: &str) -> Command {
    let mut args = vec!["verify", gateway, "--otp", code, "--json", "--base-url", base];
    if let Some(reference) = reference {
        args.extend(["--reference", reference]);
    }
    match gateway {
        "phonepe" => {}
        "paytm" => args.extend(["--device-id", "device-0042"]),
        "iserveu" => args.extend(["--mobile", mobile, "--name", "Asha Rao"]),
        _ => args.extend(["--mobile", mobile]),
    }
    let mut command = otp(&args);
    sandbox_env(&mut command);
    command
}

fn wrong_code(issued: &str) -> &'static str {
    if issued == "111111" {
        "222222"
    } else {
        "111111"
    }
}

#[test]
fn send_verify_runs_the_whole_flow_unattended_for_every_gateway() {
    let cases = [
        ("phonepe", "9876543210", vec![]),
        ("paytm", "9876543210", vec![]),
        ("iserveu", "9876543210", vec!["--name", "Asha Rao"]),
        // The magic number that AOPay answers with code 0: a registration OTP.
        ("aopay", "9000000005", vec![]),
    ];
    for (gateway, mobile, extra) in cases {
        let mut flags = vec!["--sandbox", "--verify", "--json"];
        flags.extend(extra);
        let run = run(&mut send(gateway, mobile, &flags));
        assert_eq!(run.code, 0, "{gateway}: {} {}", run.stdout, run.stderr);
        let value = run.json();
        assert_eq!(value["gateway"], gateway);
        assert!(value["send"]["outcome"].as_str().unwrap().starts_with("sent"), "{value}");
        assert_eq!(value["verify"]["outcome"], "verified", "{value}");
        assert!(value["verify"].get("credential_value").is_none(), "no credential without --show-credential");
    }
}

#[test]
fn send_verify_human_output_prints_both_steps_and_hides_the_credential() {
    let run = run(&mut send("phonepe", "9876543210", &["--sandbox", "--verify"]));
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("OTP sent through phonepe to XXXXXX3210"), "{}", run.stdout);
    assert!(run.stdout.contains("OTP verified through phonepe"), "{}", run.stdout);
    assert!(run.stdout.contains("credential:    returned (hidden"), "{}", run.stdout);
    let shown = run_with_show();
    assert!(shown.json()["verify"]["credential_value"].as_str().is_some_and(|v| v.len() == 32), "{}", shown.stdout);
}

fn run_with_show() -> Run {
    run(&mut send("paytm", "9876543210", &["--sandbox", "--verify", "--json", "--show-credential"]))
}

#[test]
fn verify_tells_wrong_from_expired_and_stale_for_every_gateway() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default());
    let base = sandbox.base_url();
    for (gateway, mobile) in [("phonepe", "7000000001"), ("paytm", "7000000002"), ("iserveu", "7000000003")] {
        let reference = send_for_reference(&base, gateway, mobile);
        let issued = sandbox.latest_code(mobile);
        let reference = if gateway == "iserveu" { None } else { reference };
        // Five wrong codes: wrong_otp, exit 3 (iServeU publishes no wrong-OTP code: rejected).
        for _ in 0..5 {
            let wrong = run(&mut verify_command(gateway, &base, reference.as_deref(), mobile, wrong_code(&issued)));
            assert_eq!(wrong.code, 3, "{gateway}: {}", wrong.stdout);
            let kind = if gateway == "iserveu" { "rejected" } else { "wrong_otp" };
            assert_eq!(wrong.json()["error"]["kind"], kind, "{gateway}");
        }
        // The sixth: the OTP is spent, even with the right code.
        let spent = run(&mut verify_command(gateway, &base, reference.as_deref(), mobile, &issued));
        assert_eq!(spent.code, 3, "{gateway}: {}", spent.stdout);
        let kind = if gateway == "iserveu" { "rejected" } else { "otp_expired" };
        assert_eq!(spent.json()["error"]["kind"], kind, "{gateway}: {}", spent.stdout);
    }
    // A stale PhonePe token: a newer send replaced it.
    let old = send_for_reference(&base, "phonepe", "7000000004");
    let old_code = sandbox.latest_code("7000000004");
    send_for_reference(&base, "phonepe", "7000000004");
    let stale = run(&mut verify_command("phonepe", &base, old.as_deref(), "7000000004", &old_code));
    assert_eq!((stale.code, stale.json()["error"]["provider_code"].clone()), (3, json!("INVALID_OTP_TOKEN")));
}

#[test]
fn an_expired_aopay_registration_otp_is_refused_and_a_fresh_one_verifies() {
    let config = otp_sandbox::SandboxConfig::default().aopay_otp_validity(std::time::Duration::from_millis(300));
    let sandbox = LibrarySandbox::start(config);
    let base = sandbox.base_url();
    let reference = send_for_reference(&base, "aopay", "9000000005");
    let code = sandbox.latest_code("9000000005");
    std::thread::sleep(std::time::Duration::from_millis(400));
    let expired = run(&mut verify_command("aopay", &base, reference.as_deref(), "9000000005", &code));
    assert_eq!(expired.code, 3, "{}", expired.stdout);
    assert_eq!(expired.json()["error"]["message"], "OTP expired");

    let reference = send_for_reference(&base, "aopay", "9000000005");
    let code = sandbox.latest_code("9000000005");
    let fresh = run(&mut verify_command("aopay", &base, reference.as_deref(), "9000000005", &code));
    assert_eq!((fresh.code, fresh.json()["outcome"].clone()), (0, json!("verified")), "{}", fresh.stdout);
}

#[test]
fn the_code_can_come_from_stdin_and_bad_codes_are_refused_before_sending() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default());
    let base = sandbox.base_url();
    let reference = send_for_reference(&base, "phonepe", "7000000010");
    let code = sandbox.latest_code("7000000010");
    let mut command = verify_command("phonepe", &base, reference.as_deref(), "7000000010", "-");
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write as _;
        writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));

    let tripwire = Tripwire::new();
    for bad in ["12", "12ab56", "123456789"] {
        let refused = run(&mut verify_command("phonepe", &tripwire.base_url(), Some("OTPx"), "", bad));
        assert_eq!((refused.code, refused.json()["error"]["kind"].clone()), (2, json!("invalid_request")), "{bad}");
    }
    // An iServeU transaction OTP has no verify call: refused before anything is sent.
    let mut args =
        vec!["send", "iserveu", "--mobile", "9876543210", "--otp-type", "transaction", "--ovd-type", "AADHAAR"];
    args.extend(["--external-ref", "REF123456", "--amount", "100", "--verify", "--json", "--base-url"]);
    let base = tripwire.base_url();
    args.push(&base);
    let refused = run(sandbox_env(&mut otp(&args)));
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.json()["error"]["message"].as_str().unwrap().contains("money-transfer"));
    assert!(!tripwire.was_contacted());
}

#[test]
fn trace_logs_of_a_verification_carry_no_code_token_or_credential() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default().fixed_otp("482913"));
    let base = sandbox.base_url();
    for gateway in ["phonepe", "paytm"] {
        let reference = send_for_reference(&base, gateway, "7000000020").unwrap();
        let mut command = verify_command(gateway, &base, Some(&reference), "7000000020", "482913");
        let verified = run(command.env("RUST_LOG", "trace"));
        assert_eq!(verified.code, 0, "{gateway}: {} {}", verified.stdout, verified.stderr);
        assert!(verified.stderr.contains("otp.verify"), "the verify span is logged: {}", verified.stderr);
        for secret in ["482913", reference.as_str(), "7000000020"] {
            assert!(!verified.stderr.contains(secret), "{gateway}: {secret} in the logs");
        }
        // The credential is 32 hex digits: no such run may appear anywhere in the logs.
        let hex_run = verified.stderr.as_bytes().windows(32).any(|w| w.iter().all(u8::is_ascii_hexdigit));
        assert!(!hex_run, "{gateway}: a credential-like value in the logs");
    }
}

// ------------------------------------------------------------------ what a verify takes from its send

/// A loopback proxy in front of `upstream` that keeps every byte the clients send through it:
/// what the sandbox behind it received.
struct Recorder {
    base: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Recorder {
    fn new(upstream: &str) -> Self {
        use std::io::{Read as _, Write as _};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut to_client) = client else { return };
                let mut to_server = std::net::TcpStream::connect(&upstream).unwrap();
                let (mut from_client, mut from_server) =
                    (to_client.try_clone().unwrap(), to_server.try_clone().unwrap());
                let log = log.clone();
                // Logged before it is forwarded: by the time the client has its answer, the
                // request is in the log.
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(read @ 1..) = from_client.read(&mut buf) {
                        log.lock().unwrap().extend_from_slice(&buf[..read]);
                        if to_server.write_all(&buf[..read]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { base, received }
    }

    /// Everything received so far, as text (the requests here are all text).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }

    /// The request lines received so far (`POST /path?query HTTP/1.1`), in order. On a kept-alive
    /// connection a request follows the previous one's body directly, on the same "line".
    fn request_lines(&self) -> Vec<String> {
        let text = self.text();
        let requests = text.split("POST /").skip(1).filter_map(|rest| rest.split_once(" HTTP/1.1\r\n"));
        requests.map(|(target, _)| format!("POST /{target} HTTP/1.1")).collect()
    }
}

/// Runs `command`, typing `input` on its standard input once `before` has returned.
fn run_typing(command: &mut Command, input: &str, before: impl FnOnce()) -> Run {
    use std::io::Write as _;
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    before();
    // A command that does not read its input may have exited already: not a failure here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The code the sandboxes below issue, typed at once.
fn type_code(command: &mut Command) -> Run {
    run_typing(command, &format!("{FIXED_CODE}\n"), || {})
}

const FIXED_CODE: &str = "482913";

/// A locale other than the default, so that a verify call that forgets the send's is seen.
const LOCALE: &str = "hi-IN";

#[test]
fn paytm_s_locale_reaches_the_verify_call_of_send_verify() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default().fixed_otp(FIXED_CODE));
    let recorder = Recorder::new(&sandbox.base_url());
    let mut command = send("paytm", "7000000031", &["--locale", LOCALE, "--verify", "--json", "--base-url"]);
    let run = type_code(sandbox_env(command.arg(&recorder.base)));
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["verify"]["outcome"], "verified", "{}", run.stdout);
    assert_eq!(
        recorder.request_lines(),
        [
            format!("POST /v4/signin/otp/sv1/?locale={LOCALE} HTTP/1.1"),
            format!("POST /v4/signin/validate/otp/sv1?locale={LOCALE} HTTP/1.1"),
        ]
    );
}

#[test]
fn otp_verify_paytm_takes_the_send_s_locale() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default().fixed_otp(FIXED_CODE));
    let recorder = Recorder::new(&sandbox.base_url());
    let reference = send_for_reference(&sandbox.base_url(), "paytm", "7000000032").unwrap();
    let mut command = verify_command("paytm", &recorder.base, Some(&reference), "7000000032", FIXED_CODE);
    let verified = run(command.args(["--locale", LOCALE]));
    assert_eq!(verified.code, 0, "{} {}", verified.stdout, verified.stderr);
    assert_eq!(verified.json()["outcome"], "verified");
    assert_eq!(recorder.request_lines(), [format!("POST /v4/signin/validate/otp/sv1?locale={LOCALE} HTTP/1.1")]);

    // Without --locale: the default, as before.
    let reference = send_for_reference(&sandbox.base_url(), "paytm", "7000000033").unwrap();
    let verified = run(&mut verify_command("paytm", &recorder.base, Some(&reference), "7000000033", FIXED_CODE));
    assert_eq!(verified.code, 0, "{} {}", verified.stdout, verified.stderr);
    assert_eq!(recorder.request_lines()[1], "POST /v4/signin/validate/otp/sv1?locale=en-IN HTTP/1.1");
    // A locale Paytm would not take is refused before anything is sent.
    let refused = run(verify_command("paytm", &recorder.base, Some(&reference), "7000000033", FIXED_CODE)
        .args(["--locale", "english"]));
    assert_eq!((refused.code, refused.json()["error"]["kind"].clone()), (2, json!("invalid_request")));
    assert_eq!(recorder.request_lines().len(), 2, "nothing more was sent");
}

/// `"KycId":"…"` in the RegisterRemitter bodies the sandbox received.
fn kyc_ids(recorder: &Recorder) -> Vec<String> {
    let text = recorder.text();
    text.split("\"KycId\":\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
}

#[test]
fn aopay_s_kyc_id_reaches_register_remitter_as_before() {
    let sandbox = LibrarySandbox::start(otp_sandbox::SandboxConfig::default().fixed_otp(FIXED_CODE));
    let recorder = Recorder::new(&sandbox.base_url());
    // 9000000005: AOPay's code 0, a registration OTP, which RegisterRemitter consumes.
    let mut command = send("aopay", "9000000005", &["--kyc-id", "KYC7788", "--verify", "--json", "--base-url"]);
    let run = type_code(sandbox_env(command.arg(&recorder.base)));
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.json()["verify"]["outcome"], "verified", "{}", run.stdout);
    assert_eq!(kyc_ids(&recorder), ["KYC7788"]);

    let mut command = send("aopay", "9000000005", &["--verify", "--json", "--base-url"]);
    let run = type_code(sandbox_env(command.arg(&recorder.base)));
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(kyc_ids(&recorder), ["KYC7788"], "without --kyc-id, no KycId");

    let reference = send_for_reference(&sandbox.base_url(), "aopay", "9000000005");
    let mut command = verify_command("aopay", &recorder.base, reference.as_deref(), "9000000005", FIXED_CODE);
    let verified = self::run(command.args(["--kyc-id", "KYC9911"]));
    assert_eq!(verified.code, 0, "{} {}", verified.stdout, verified.stderr);
    assert_eq!(kyc_ids(&recorder), ["KYC7788", "KYC9911"]);
}

#[test]
fn aopay_s_send_verify_checks_the_code_within_its_validity_and_refuses_a_transaction_otp_unasked() {
    let config = otp_sandbox::SandboxConfig::default().fixed_otp(FIXED_CODE);
    let sandbox = LibrarySandbox::start(config.aopay_otp_validity(std::time::Duration::from_millis(500)));
    let recorder = Recorder::new(&sandbox.base_url());
    // The code typed after its validity: the verify call went out, and AOPay refused it.
    let mut command = send("aopay", "9000000005", &["--verify", "--json", "--base-url", &recorder.base]);
    let after_its_validity = || {
        let started = std::time::Instant::now();
        while recorder.request_lines().is_empty() {
            assert!(started.elapsed().as_secs() < 10, "the send never arrived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(700));
    };
    let late = run_typing(sandbox_env(&mut command), &format!("{FIXED_CODE}\n"), after_its_validity);
    assert_eq!(late.code, 3, "{}", late.stdout);
    assert_eq!(late.json()["verify"]["error"]["message"], "OTP expired", "{}", late.stdout);
    assert_eq!(recorder.request_lines().len(), 2, "the send and its RegisterRemitter");

    // Code 1, a transaction OTP: refused before a code is asked for (none is given here).
    let mut command = send("aopay", "9876543210", &["--verify", "--json", "--base-url", &recorder.base]);
    let refused = run_typing(sandbox_env(&mut command), "", || {});
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    let body = refused.json();
    assert_eq!(body["send"]["provider_code"], "1");
    let message = body["verify"]["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("AOPay answered code 1: a transaction OTP"), "{message}");
    assert_eq!(recorder.request_lines().len(), 3, "the send only: no RegisterRemitter");
}

/// Each gateway's `otp send --help` names exactly the variables its missing-credentials error
/// names, in the same order.
#[test]
fn the_help_names_the_credentials_the_client_reads() {
    let tripwire = Tripwire::new();
    for gateway in GATEWAYS {
        let help = run(&mut otp(&["send", gateway, "--help"]));
        let summary = help.stdout.lines().next().unwrap();
        let (_, listed) = summary.split_once(" Credentials: ").unwrap_or_else(|| panic!("{gateway}: {summary}"));
        let missing = run(&mut send(gateway, "9876543210", &["--json", "--base-url", &tripwire.base_url()]));
        let message = missing.json()["error"]["message"].as_str().unwrap().to_owned();
        let named = message.split_once(": set ").and_then(|(_, rest)| rest.split_once(';')).unwrap().0.to_owned();
        assert_eq!(listed, named, "{gateway}");
    }
    assert!(!tripwire.was_contacted());
}

// ------------------------------------------------------------------ output a provider cannot forge

/// A one-shot HTTP server that answers every request with `body` (HTTP 200, JSON).
/// A server that reads each request and never answers (a request that may have been acted on).
fn silent() -> String {
    use std::io::Read as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept() {
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf);
            held.push(socket);
        }
    });
    base
}

#[test]
fn a_timed_out_send_warns_of_a_second_sms_and_a_timed_out_verify_of_a_used_code() {
    let base = silent();
    let sent = run(sandbox_env(&mut send("phonepe", "9876543210", &["--base-url", &base, "--timeout", "1"])));
    assert_eq!(sent.code, 4, "{}", sent.stderr);
    assert!(sent.stderr.contains("a resend is a second SMS"), "{}", sent.stderr);
    let args = ["verify", "phonepe", "--reference", "OTPx", "--otp", "123456", "--base-url", &base, "--timeout", "1"];
    let verified = run(sandbox_env(&mut otp(&args)));
    assert_eq!(verified.code, 4, "{}", verified.stderr);
    assert!(verified.stderr.contains("may or may not have been checked"), "{}", verified.stderr);
    assert!(!verified.stderr.contains("SMS"), "{}", verified.stderr);
}

fn answering(body: &'static str, requests: usize) -> String {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut socket, _)) = listener.accept() else { return };
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes());
            let _ = socket.write_all(body.as_bytes());
        }
    });
    base
}

/// PhonePe's success, with a message that clears the screen, forges a line, and echoes an
/// Aadhaar number and a mobile number.
const FORGING: &str = r#"{"success":false,"code":"USER_BLOCKED","message":"\u001b[2J\u001b[H\r\notp: sent OK 765386439745 to 9876543210","data":{}}"#;

#[test]
fn provider_text_cannot_drive_the_terminal_and_numbers_in_it_are_masked() {
    let base = answering(FORGING, 3);
    let human = run(sandbox_env(&mut send("phonepe", "9876543210", &["--base-url", &base])));
    assert_eq!(human.code, 3, "{}", human.stderr);
    assert!(!human.stderr.contains('\u{1b}') && !human.stderr.contains('\r'), "{:?}", human.stderr);
    assert!(!human.stderr.lines().any(|line| line.starts_with("otp: sent OK")), "{:?}", human.stderr);
    assert!(human.stderr.contains("\\u{1b}[2J"), "the escape is shown, escaped: {:?}", human.stderr);
    assert!(human.stderr.contains("XXXXXXXX9745") && human.stderr.contains("XXXXXX3210"), "{:?}", human.stderr);
    assert!(!human.stderr.contains("765386439745") && !human.stderr.contains("9876543210"), "{:?}", human.stderr);

    let json = run(sandbox_env(&mut send("phonepe", "9876543210", &["--base-url", &base, "--json"])));
    let message = json.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("XXXXXXXX9745") && !message.contains("765386439745"), "{message}");
    let raw =
        run(sandbox_env(&mut send("phonepe", "9876543210", &["--base-url", &base, "--json", "--raw-provider-text"])));
    let message = raw.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("765386439745") && message.contains('\u{1b}'), "verbatim on request: {message:?}");
}

/// `otp sandbox ARGS` with no admin token in the environment unless the test sets one.
fn sandbox_command(args: &[&str]) -> Command {
    let mut command = otp(&[&["sandbox"], args].concat());
    command.env_remove("OTP_SANDBOX_TOKEN");
    command
}

/// A file holding `contents` in the temporary directory, removed when dropped.
struct TokenFile(std::path::PathBuf);

impl TokenFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("otp-cli-test-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Starts `otp sandbox` and returns it with its base URL, read from the banner's first line.
fn start_sandbox(command: &mut Command) -> (Server, String) {
    let mut server = Server(command.stdout(Stdio::piped()).spawn().unwrap());
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    assert!(first_line.starts_with("otp sandbox listening on http://"), "it did not start: {first_line:?}");
    let base = first_line.trim().rsplit(' ').next().unwrap().to_owned();
    (server, base)
}

/// The HTTP status of `GET /__sandbox/otps` with this `Authorization` header, if any.
fn inbox_status(base: &str, authorization: Option<&str>) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    let header = authorization.map(|a| format!("authorization: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET /__sandbox/otps?mobile=9876543210 HTTP/1.1\r\nhost: x\r\n{header}connection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).unwrap().to_owned()
}

fn stop(mut server: Server) {
    let killed = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(server.0.wait().unwrap().success());
}

const ADMIN_TOKEN: &str = "0123456789abcdef-token";

#[test]
fn otp_sandbox_refuses_a_remote_address_without_a_token() {
    let refused = run(&mut sandbox_command(&["--addr", "0.0.0.0:0"]));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--allow-remote"), "{}", refused.stderr);
    let no_token = run(&mut sandbox_command(&["--addr", "0.0.0.0:0", "--allow-remote"]));
    assert_eq!(no_token.code, 2, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("--token-file") && no_token.stderr.contains("OTP_SANDBOX_TOKEN"),
        "{}",
        no_token.stderr
    );
    let short = TokenFile::new("short", "short\n");
    let short = run(&mut sandbox_command(&["--addr", "0.0.0.0:0", "--allow-remote", "--token-file", short.path()]));
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("at least 16"), "{}", short.stderr);
}

/// A token on the command line is visible to every user of the machine (`ps`): there is no
/// flag for it.
#[test]
fn otp_sandbox_has_no_token_flag() {
    // A short token, so that a build that still took the flag refuses it and exits.
    let refused = run(&mut sandbox_command(&["--addr", "0.0.0.0:0", "--allow-remote", "--token", "short"]));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("unexpected argument '--token'"), "{}", refused.stderr);
    let help = run(&mut sandbox_command(&["--help"]));
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(
        help.stdout.contains("--token-file <PATH>") && help.stdout.contains("OTP_SANDBOX_TOKEN"),
        "{}",
        help.stdout
    );
    assert!(!help.stdout.contains("--token <"), "{}", help.stdout);
}

#[test]
fn otp_sandbox_enforces_a_token_from_a_file_or_the_environment() {
    let file = TokenFile::new("token", &format!("{ADMIN_TOKEN}\n"));
    let (server, base) = start_sandbox(&mut sandbox_command(&[
        "--addr",
        "127.0.0.1:0",
        "--token-file",
        file.path(),
        "--fixed-otp",
        "123456",
    ]));
    let same_length = "0123456789abcdef-tokeN";
    assert_eq!(same_length.len(), ADMIN_TOKEN.len());
    assert_eq!(inbox_status(&base, None), "401");
    assert_eq!(inbox_status(&base, Some(&format!("Bearer {same_length}"))), "401", "same length, one byte off");
    assert_eq!(inbox_status(&base, Some("Bearer wrong-token")), "401", "another length");
    assert_eq!(inbox_status(&base, Some(&format!("Bearer {}", &ADMIN_TOKEN[..16]))), "401", "a prefix");
    assert_eq!(
        inbox_status(&base, Some(&format!("Bearer {ADMIN_TOKEN}"))),
        "200",
        "the file's first line, newline trimmed"
    );
    // The gateways themselves need no token, and the fixed OTP is issued.
    let sent = run(sandbox_env(&mut send("phonepe", "9876543210", &["--json", "--base-url", &base])));
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    stop(server);

    let (server, base) =
        start_sandbox(sandbox_command(&["--addr", "127.0.0.1:0"]).env("OTP_SANDBOX_TOKEN", ADMIN_TOKEN));
    assert_eq!(inbox_status(&base, None), "401");
    assert_eq!(inbox_status(&base, Some(&format!("Bearer {same_length}"))), "401");
    assert_eq!(inbox_status(&base, Some(&format!("Bearer {ADMIN_TOKEN}"))), "200");
    stop(server);
}

#[test]
fn otp_sandbox_refuses_an_empty_token_a_missing_file_and_a_token_given_twice() {
    // A remote address with --allow-remote: a build that ignored the token would refuse and
    // exit too, rather than serve.
    let remote = ["--addr", "0.0.0.0:0", "--allow-remote"];
    let refuse = |command: &mut Command, expected: &str| {
        let refused = run(command);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains(expected), "expected {expected:?}: {}", refused.stderr);
    };
    for (name, contents) in [("empty", ""), ("newline", "\n"), ("blank", "   \r\nsecond line is not read\n")] {
        let file = TokenFile::new(name, contents);
        refuse(&mut sandbox_command(&[&remote[..], &["--token-file", file.path()]].concat()), "empty");
    }
    refuse(sandbox_command(&remote).env("OTP_SANDBOX_TOKEN", ""), "empty");
    let missing = std::env::temp_dir().join(format!("otp-cli-test-{}-missing", std::process::id()));
    let missing = missing.to_str().unwrap();
    refuse(&mut sandbox_command(&[&remote[..], &["--token-file", missing]].concat()), missing);
    let file = TokenFile::new("twice", &format!("{ADMIN_TOKEN}\n"));
    refuse(
        sandbox_command(&[&remote[..], &["--token-file", file.path()]].concat()).env("OTP_SANDBOX_TOKEN", ADMIN_TOKEN),
        "not both",
    );
}
