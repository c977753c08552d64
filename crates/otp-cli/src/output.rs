//! What the command prints: one JSON object with `--json`, readable lines otherwise; and the
//! exit code README's CLI section lists.

use std::io::Write as _;
use std::process::ExitCode;

use otp::{Error, ErrorKind, Gateway, MobileNumber, Outcome, Reached, SendReceipt, VerifyReceipt};
use serde::Serialize;

/// Exit codes, as README's CLI section lists them.
pub mod exit {
    /// The OTP was sent.
    pub const SENT: u8 = 0;
    /// Anything else.
    pub const OTHER: u8 = 1;
    /// Nothing was sent: bad usage, invalid input, missing configuration.
    pub const NOTHING_SENT: u8 = 2;
    /// The provider answered and refused.
    pub const REFUSED: u8 = 3;
    /// No usable answer.
    pub const NO_ANSWER: u8 = 4;
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The SDK's own error, with its kind.
    Otp(Error),
    /// The SDK's error from a verify call (a code check, not a send).
    Verify(Error),
    /// Something around the send failed (the runtime or the embedded sandbox could not start).
    Internal(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Otp(error)
    }
}

#[derive(Serialize)]
struct SuccessJson<'a> {
    gateway: &'a str,
    outcome: &'a str,
    reference: Option<&'a str>,
    provider_code: &'a str,
    http_status: u16,
    message: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Serialize)]
struct FailureJson<'a> {
    gateway: Option<&'a str>,
    error: ErrorJson<'a>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    kind: &'a str,
    provider_code: Option<&'a str>,
    http_status: Option<u16>,
    message: std::borrow::Cow<'a, str>,
    retryable: bool,
}

/// Whether provider text goes into the JSON verbatim (`--raw-provider-text`); masked otherwise.
static RAW_PROVIDER_TEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once from the command line, before anything is printed.
pub fn set_raw_provider_text(raw: bool) {
    RAW_PROVIDER_TEXT.store(raw, std::sync::atomic::Ordering::Relaxed);
}

/// Provider text for JSON: numbers masked, unless the caller asked for it verbatim (JSON
/// escaping already makes control characters harmless there).
fn for_json(text: &str) -> std::borrow::Cow<'_, str> {
    if RAW_PROVIDER_TEXT.load(std::sync::atomic::Ordering::Relaxed) {
        std::borrow::Cow::Borrowed(text)
    } else {
        otp::mask_digit_runs(text)
    }
}

/// Provider text for a terminal: numbers masked and every control character escaped, so an
/// answer cannot clear the screen, move the cursor or forge a line of our output.
pub fn for_terminal(text: &str) -> String {
    let masked = otp::mask_digit_runs(text);
    let mut safe = String::with_capacity(masked.len());
    for c in masked.chars() {
        if c.is_control() {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    safe
}

/// A write to a closed stdout (`otp ... | head -c0`) is not worth a panic or a different exit.
fn print_stdout(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

fn print_stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn send_body(receipt: &SendReceipt) -> SuccessJson<'_> {
    SuccessJson {
        gateway: receipt.gateway.as_str(),
        outcome: receipt.outcome.as_str(),
        reference: receipt.reference.as_ref().map(|r| r.expose_secret()),
        provider_code: &receipt.provider_code,
        http_status: receipt.http_status,
        message: receipt.message.as_deref().map(for_json),
    }
}

fn send_lines(receipt: &SendReceipt, mobile: &MobileNumber) -> Vec<String> {
    let headline = match receipt.outcome {
        Outcome::SentForRegistration => {
            format!("OTP sent for registration through {} to {}", receipt.gateway, mobile.masked())
        }
        _ => format!("OTP sent through {} to {}", receipt.gateway, mobile.masked()),
    };
    let mut lines = vec![
        headline,
        format!("  outcome:       {}", receipt.outcome),
        format!("  provider code: {} (HTTP {})", for_terminal(&receipt.provider_code), receipt.http_status),
    ];
    if let Some(message) = &receipt.message {
        lines.push(format!("  message:       {}", for_terminal(message)));
    }
    let reference = receipt.reference.as_ref().map(|r| r.expose_secret());
    lines.push(format!("  reference:     {}", reference.map_or_else(|| "(none)".to_owned(), for_terminal)));
    lines
}

pub fn success(receipt: &SendReceipt, mobile: &MobileNumber, json: bool) -> ExitCode {
    if json {
        print_json(&send_body(receipt));
    } else {
        print_stdout(&send_lines(receipt, mobile).join("\n"));
    }
    ExitCode::from(exit::SENT)
}

#[derive(Serialize)]
struct VerifiedJson<'a> {
    gateway: &'a str,
    outcome: &'a str,
    /// Whether the gateway returned a credential; its value only with --show-credential.
    credential: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_value: Option<&'a str>,
    provider_code: &'a str,
    http_status: u16,
    message: Option<std::borrow::Cow<'a, str>>,
}

fn verify_body(receipt: &VerifyReceipt, show_credential: bool) -> VerifiedJson<'_> {
    VerifiedJson {
        gateway: receipt.gateway.as_str(),
        outcome: receipt.outcome.as_str(),
        credential: receipt.credential.is_some(),
        credential_value: receipt.credential.as_ref().filter(|_| show_credential).map(|c| c.expose_secret()),
        provider_code: &receipt.provider_code,
        http_status: receipt.http_status,
        message: receipt.message.as_deref().map(for_json),
    }
}

fn verify_lines(receipt: &VerifyReceipt, show_credential: bool) -> Vec<String> {
    let mut lines = vec![
        format!("OTP verified through {}", receipt.gateway),
        format!("  outcome:       {}", receipt.outcome),
        format!("  provider code: {} (HTTP {})", for_terminal(&receipt.provider_code), receipt.http_status),
    ];
    if let Some(message) = &receipt.message {
        lines.push(format!("  message:       {}", for_terminal(message)));
    }
    let credential = match &receipt.credential {
        Some(credential) if show_credential => for_terminal(credential.expose_secret()),
        Some(_) => "returned (hidden: --show-credential prints it)".to_owned(),
        None => "(none)".to_owned(),
    };
    lines.push(format!("  credential:    {credential}"));
    lines
}

/// `otp verify`: the verification's result.
pub fn verified(receipt: &VerifyReceipt, show_credential: bool, json: bool) -> ExitCode {
    if json {
        print_json(&verify_body(receipt, show_credential));
    } else {
        print_stdout(&verify_lines(receipt, show_credential).join("\n"));
    }
    ExitCode::from(exit::SENT)
}

#[derive(Serialize)]
#[serde(untagged)]
enum StepJson<'a, T: Serialize> {
    Done(T),
    Failed { error: ErrorJson<'a> },
}

#[derive(Serialize)]
struct FlowJson<'a> {
    gateway: &'a str,
    send: StepJson<'a, SuccessJson<'a>>,
    verify: Option<StepJson<'a, VerifiedJson<'a>>>,
}

/// `otp send --verify`: both steps, as one JSON object or two blocks of lines. The exit code
/// is the send's when it failed, else the verification's.
pub fn flow(
    gateway: Gateway,
    mobile: &MobileNumber,
    send: &Result<SendReceipt, Failure>,
    verify: Option<&Result<VerifyReceipt, Failure>>,
    show_credential: bool,
    json: bool,
) -> ExitCode {
    let code = match (send, verify) {
        (Err(failure), _) | (Ok(_), Some(Err(failure))) => failure_parts(failure).5,
        _ => exit::SENT,
    };
    if json {
        let body = FlowJson {
            gateway: gateway.as_str(),
            send: match send {
                Ok(receipt) => StepJson::Done(send_body(receipt)),
                Err(failure) => StepJson::Failed { error: error_json(failure) },
            },
            verify: verify.map(|result| match result {
                Ok(receipt) => StepJson::Done(verify_body(receipt, show_credential)),
                Err(failure) => StepJson::Failed { error: error_json(failure) },
            }),
        };
        print_json(&body);
    } else {
        match send {
            Ok(receipt) => print_stdout(&send_lines(receipt, mobile).join("\n")),
            Err(failure) => print_failure(failure),
        }
        match verify {
            Some(Ok(receipt)) => print_stdout(&verify_lines(receipt, show_credential).join("\n")),
            Some(Err(failure)) => print_failure(failure),
            None => {}
        }
    }
    ExitCode::from(code)
}

pub fn exit_code(error: &Error) -> u8 {
    let answered = error.provider_response().is_some();
    match error.kind() {
        ErrorKind::InvalidRequest if !answered => exit::NOTHING_SENT,
        ErrorKind::InvalidRequest
        | ErrorKind::Authentication
        | ErrorKind::RateLimited
        | ErrorKind::Blocked
        | ErrorKind::Rejected
        | ErrorKind::WrongOtp
        | ErrorKind::OtpExpired => exit::REFUSED,
        ErrorKind::ProviderUnavailable | ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::UnexpectedResponse => {
            exit::NO_ANSWER
        }
        _ => exit::OTHER,
    }
}

/// A failure's JSON fields and its exit code.
fn failure_parts(failure: &Failure) -> (&str, Option<&str>, Option<u16>, &str, bool, u8) {
    match failure {
        Failure::Otp(error) | Failure::Verify(error) => (
            error.kind().as_str(),
            error.provider_code(),
            error.http_status(),
            error.provider_message().unwrap_or(error.description()),
            error.is_retryable(),
            exit_code(error),
        ),
        // No kind of docs/gateways/README.md fits a failure of this machine; `transport` is the nearest
        // ("the connection could not be made"), and the exit code says it is not the provider's.
        Failure::Internal(message) => ("transport", None, None, message.as_str(), false, exit::OTHER),
    }
}

fn error_json(failure: &Failure) -> ErrorJson<'_> {
    let (kind, provider_code, http_status, message, retryable, _) = failure_parts(failure);
    ErrorJson { kind, provider_code, http_status, message: for_json(message), retryable }
}

fn print_failure(failure: &Failure) {
    match failure {
        Failure::Otp(error) | Failure::Verify(error) => {
            print_stderr(&format!("otp: {}", for_terminal(&error.to_string())));
            let verifying = matches!(failure, Failure::Verify(_));
            if let Some(hint) = hint(error, verifying) {
                print_stderr(&format!("  {hint}"));
            }
        }
        Failure::Internal(message) => print_stderr(&format!("otp: {}", for_terminal(message))),
    }
}

pub fn failure(gateway: Option<Gateway>, failure: &Failure, json: bool) -> ExitCode {
    if json {
        print_json(&FailureJson { gateway: gateway.map(Gateway::as_str), error: error_json(failure) });
    } else {
        print_failure(failure);
    }
    ExitCode::from(failure_parts(failure).5)
}

/// What an operator should do next, where the kind alone does not say it.
fn hint(error: &Error, verifying: bool) -> Option<&'static str> {
    if error.reached_provider() == Reached::Maybe {
        if verifying {
            return Some("the code may or may not have been checked (a check can use it up): if it is refused now, send a new one");
        }
        return Some("the OTP may or may not have gone out: check before sending again (a resend is a second SMS)");
    }
    if error.is_retryable() {
        return Some("retryable: nothing suggests the OTP went out; it is safe to try again later");
    }
    None
}

/// A command line clap refused: exit 2, and one JSON object when `--json` was asked for.
pub fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    if matches!(error.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--json") {
        let _ = error.print();
        return ExitCode::from(exit::NOTHING_SENT);
    }
    let gateway = args
        .iter()
        .position(|a| a == "send" || a == "verify")
        .and_then(|i| args.get(i + 1))
        .and_then(|name| name.parse::<Gateway>().ok());
    // clap's text: "error: ..." over one or more lines, a blank line, then usage and help.
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered.lines().map(str::trim).take_while(|line| !line.is_empty()).collect();
    let message = message.join(" ");
    let message = message.trim_start_matches("error: ");
    let body = FailureJson {
        gateway: gateway.map(Gateway::as_str),
        error: ErrorJson {
            kind: "invalid_request",
            provider_code: None,
            http_status: None,
            message: message.into(),
            retryable: false,
        },
    };
    print_json(&body);
    ExitCode::from(exit::NOTHING_SENT)
}

/// One JSON object on stdout. Our output structs of strings, numbers and options always
/// serialise; an empty line instead would break every script reading us.
#[allow(clippy::expect_used)] // See the message.
fn print_json(body: &impl Serialize) {
    print_stdout(&serde_json::to_string(body).expect("the CLI's output structs serialise to JSON by construction"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_invalid_input_and_configuration_exit_2() {
        assert_eq!(exit_code(&Error::invalid_input("bad")), exit::NOTHING_SENT);
        assert_eq!(exit_code(&Error::configuration("missing")), exit::NOTHING_SENT);
    }

    #[test]
    fn no_answer_kinds_exit_4() {
        assert_eq!(exit_code(&Error::transport("reset")), exit::NO_ANSWER);
        assert_eq!(exit_code(&Error::timeout(std::time::Duration::from_secs(1))), exit::NO_ANSWER);
        assert_eq!(exit_code(&Error::unexpected("html")), exit::NO_ANSWER);
    }
}
