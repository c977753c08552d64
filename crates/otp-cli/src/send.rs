//! `otp send`, `otp verify` and `otp sandbox`: from flags and environment to a client, a
//! request, a send and a verification.

use std::process::ExitCode;
use std::time::Duration;

use std::io::{IsTerminal as _, Write as _};

use otp::verifier::Verification;
use otp::{
    ClientOptions, Environment, Error, GatewayClient, HttpOptions, MobileNumber, OtpCode, SecretString, SendReceipt,
    VerifyReceipt,
};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};

use crate::args::{CodeArgs, ConnectionArgs, EnvName, SandboxCommand, SendArgs};
use crate::gateways::{Credentials, Flags, Profile};
use crate::output::{self, Failure};

/// The longest `--timeout` accepted: an hour is already far past any gateway's patience.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

/// `otp send <gateway>`, and with `--verify` its verification.
pub async fn run<P: Profile>(args: SendArgs<P::Send>) -> ExitCode {
    let gateway = P::GATEWAY;
    let common = &args.common;
    let json = common.connection.json;
    output::set_raw_provider_text(common.connection.raw_provider_text);
    let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
    let mobile = match common.mobile.parse::<MobileNumber>() {
        Ok(mobile) => mobile,
        Err(error) => return output::failure(Some(gateway), &tag(Error::from(error)), json),
    };
    // Every input, the verify step's included, is checked before anything is started or sent.
    let prepared = P::send_request(&args.gateway, mobile).and_then(|request| match common.verify {
        true => P::for_verify(&args.gateway, Verification::new(request)),
        false => Ok(Verification::new(request)),
    });
    let verification = match prepared {
        Ok(verification) => verification,
        Err(error) => return output::failure(Some(gateway), &tag(error), json),
    };
    let target = match Target::start::<P>(&common.connection, Flags::Send(&args.gateway)).await {
        Ok(target) => target,
        Err(failure) => return output::failure(Some(gateway), &failure, json),
    };
    let sent = target.client.send_otp(verification.request()).await.map_err(Failure::Otp);
    if !common.verify {
        return match sent {
            Ok(receipt) => output::success(&receipt, &mobile, json),
            Err(failure) => output::failure(Some(gateway), &failure, json),
        };
    }
    let verified = match &sent {
        Ok(receipt) => Some(verify_after_send::<P>(&target, &verification, receipt, mobile).await),
        Err(_) => None,
    };
    output::flow(gateway, &mobile, &sent, verified.as_ref(), common.connection.show_credential, json)
}

/// The client a command sends through, and the embedded sandbox when asked (it serves for as
/// long as this lives).
struct Target {
    client: GatewayClient,
    sandbox: Option<Sandbox>,
}

impl Target {
    async fn start<P: Profile>(connection: &ConnectionArgs, flags: Flags<'_, P>) -> Result<Self, Failure> {
        let tag = |error: Error| Failure::Otp(error.with_gateway(P::GATEWAY));
        let http = http_options(connection).map_err(tag)?;
        let sandbox = match connection.sandbox {
            true => Some(
                Sandbox::start(SandboxConfig::default())
                    .await
                    .map_err(|error| Failure::Internal(format!("the embedded sandbox could not start: {error}")))?,
            ),
            false => None,
        };
        let environment = match (&sandbox, &connection.base_url, connection.env) {
            (Some(sandbox), _, _) => Environment::Custom(sandbox.base_url()),
            (None, Some(base_url), _) => Environment::Custom(base_url.clone()),
            (None, None, Some(EnvName::Production)) => Environment::Production,
            (None, None, Some(EnvName::Uat) | None) => Environment::Uat,
        };
        let options = ClientOptions::new().environment(environment).http(http);
        let client = match sandbox {
            // The sandbox's own credentials; an iServeU --username still travels on the request.
            Some(_) => otp::sandbox::client(P::GATEWAY, options),
            None => P::client(Credentials::from_env(P::GATEWAY), flags, options),
        };
        Ok(Self { client: client.map_err(tag)?, sandbox })
    }
}

/// The verify step of `--verify`. The request comes from the one definition of how a
/// gateway's verify follows from its send: `SendOtpRequest::verify_request`, through the
/// gateway's profile (the verifier's sessions use the same).
async fn verify_after_send<P: Profile>(
    target: &Target,
    verification: &Verification,
    receipt: &SendReceipt,
    mobile: MobileNumber,
) -> Result<VerifyReceipt, Failure> {
    let tag = |error: Error| Failure::Otp(error.with_gateway(receipt.gateway));
    P::verifiable(receipt).map_err(tag)?;
    let code = read_code(target.sandbox.as_ref(), &mobile).map_err(tag)?;
    let request = verification
        .request()
        .verify_request(receipt.reference.as_ref(), receipt.outcome, code, verification.extras())
        .map_err(tag)?;
    target.client.verify_otp(&request).await.map_err(Failure::Verify)
}

/// The code the customer received: from the embedded sandbox's inbox, else typed at a prompt
/// on a terminal, else one line of standard input.
fn read_code(sandbox: Option<&Sandbox>, mobile: &MobileNumber) -> Result<OtpCode, Error> {
    if let Some(sandbox) = sandbox {
        let latest = sandbox.otps(mobile.expose_digits()).into_iter().next();
        let code = latest.ok_or_else(|| Error::invalid_input("the sandbox's inbox has no OTP for this number"))?;
        return OtpCode::parse(&code.otp);
    }
    if std::io::stdin().is_terminal() {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "OTP sent to {} — enter it: ", mobile.masked());
        let _ = stderr.flush();
    }
    read_line_code()
}

/// One line of standard input, as a code.
fn read_line_code() -> Result<OtpCode, Error> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::invalid_input("could not read the OTP from standard input").with_source(e))?;
    OtpCode::parse(line.trim())
}

/// `otp verify <gateway>`: one verification.
pub async fn verify<P: Profile>(args: P::Verify) -> ExitCode {
    let gateway = P::GATEWAY;
    let code_args = P::code(&args);
    let json = code_args.connection.json;
    output::set_raw_provider_text(code_args.connection.raw_provider_text);
    let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
    let request = match typed_code(code_args).and_then(|code| P::standalone_verify(&args, code)) {
        Ok(request) => request,
        Err(error) => return output::failure(Some(gateway), &tag(error), json),
    };
    let target = match Target::start::<P>(&code_args.connection, Flags::Verify(&args)).await {
        Ok(target) => target,
        Err(failure) => return output::failure(Some(gateway), &failure, json),
    };
    match target.client.verify_otp(&request).await {
        Ok(receipt) => output::verified(&receipt, code_args.connection.show_credential, json),
        Err(error) => output::failure(Some(gateway), &Failure::Verify(error), json),
    }
}

/// `--otp`: the code, or with `-` one line of standard input.
fn typed_code(args: &CodeArgs) -> Result<OtpCode, Error> {
    match args.otp.as_str() {
        "-" => read_line_code(),
        code => OtpCode::parse(code),
    }
}

fn http_options(connection: &ConnectionArgs) -> Result<HttpOptions, Error> {
    let secs = connection.timeout;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        return Err(Error::invalid_input(format!(
            "--timeout must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"
        )));
    }
    Ok(HttpOptions::default().timeout(Duration::from_secs_f64(secs)).allow_insecure_http(connection.allow_http))
}

/// The shortest admin token a sandbox reachable from other machines accepts.
const MIN_REMOTE_TOKEN_CHARS: usize = 16;

/// The sandbox's admin token: from `OTP_SANDBOX_TOKEN` or the first line of `--token-file`
/// (never both, never blank), so that it never appears on a command line.
fn admin_token(command: &SandboxCommand) -> Result<Option<SecretString>, Error> {
    let from_env = match std::env::var("OTP_SANDBOX_TOKEN") {
        Ok(token) => Some(SecretString::new(token)),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Error::invalid_input("OTP_SANDBOX_TOKEN is not valid UTF-8"));
        }
    };
    let (token, source) = match (&command.token_file, from_env) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_input(
                "the admin token is given twice: set OTP_SANDBOX_TOKEN or pass --token-file, not both",
            ));
        }
        (Some(path), None) => {
            // The whole file is a secret too: held as one, so its memory is zeroed when dropped.
            let contents = std::fs::read_to_string(path).map(SecretString::new).map_err(|error| {
                Error::invalid_input(format!("the token file {} could not be read: {error}", path.display()))
            })?;
            let first_line = contents.expose_secret().lines().next().unwrap_or_default();
            (SecretString::new(first_line), format!("the first line of {}", path.display()))
        }
        (None, Some(token)) => (token, "OTP_SANDBOX_TOKEN".to_owned()),
        (None, None) => return Ok(None),
    };
    if token.expose_secret().trim().is_empty() {
        return Err(Error::invalid_input(format!("the admin token ({source}) is empty")));
    }
    Ok(Some(token))
}

/// The sandbox's configuration from `otp sandbox`'s flags; a remote address needs
/// `--allow-remote` and a token.
fn sandbox_config(command: &SandboxCommand) -> Result<SandboxConfig, Error> {
    let mut config = SandboxConfig::default();
    let token = admin_token(command)?;
    if !command.addr.ip().is_loopback() {
        if !command.allow_remote {
            return Err(Error::invalid_input(format!(
                "{} is not a loopback address: anyone who can reach it could read the inbox; pass --allow-remote \
                 with an admin token (--token-file PATH or OTP_SANDBOX_TOKEN)",
                command.addr
            )));
        }
        if token.as_ref().is_none_or(|token| token.expose_secret().chars().count() < MIN_REMOTE_TOKEN_CHARS) {
            return Err(Error::invalid_input(format!(
                "--allow-remote needs an admin token of at least {MIN_REMOTE_TOKEN_CHARS} characters \
                 (--token-file PATH or OTP_SANDBOX_TOKEN)"
            )));
        }
    }
    if let Some(token) = token {
        config = config.admin_token(token);
    }
    if let Some(code) = &command.fixed_otp {
        OtpCode::parse(code)?;
        config = config.fixed_otp(code);
    }
    config = config
        .otp_validity(Duration::from_secs(command.otp_validity))
        .aopay_otp_validity(Duration::from_secs(command.aopay_otp_validity))
        .limit_window(Duration::from_secs(command.limit_window))
        .max_numbers(command.max_numbers)
        .max_connections(command.max_connections);
    let set = |value: &Option<String>, field: &mut String| {
        if let Some(value) = value {
            value.clone_into(field);
        }
    };
    set(&command.phonepe_merchant_id, &mut config.credentials.phonepe.merchant_id);
    set(&command.phonepe_salt_key, &mut config.credentials.phonepe.salt_key);
    if let Some(index) = command.phonepe_salt_index {
        config.credentials.phonepe.salt_index = index;
    }
    set(&command.paytm_client_id, &mut config.credentials.paytm.client_id);
    set(&command.paytm_client_secret, &mut config.credentials.paytm.client_secret);
    set(&command.iserveu_client_id, &mut config.credentials.iserveu.client_id);
    set(&command.iserveu_client_secret, &mut config.credentials.iserveu.client_secret);
    set(&command.iserveu_username, &mut config.credentials.iserveu.username);
    set(&command.aopay_registration_id, &mut config.credentials.aopay.registration_id);
    Ok(config)
}

/// `otp sandbox`: serve until Ctrl-C (or SIGTERM, for containers), then let requests in
/// flight finish.
pub async fn serve_sandbox(command: SandboxCommand) -> ExitCode {
    let config = match sandbox_config(&command) {
        Ok(config) => config,
        Err(error) => return output::failure(None, &Failure::Otp(error), false),
    };
    // Each connection is a file descriptor: take what the hard limit allows.
    #[cfg(unix)]
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(%error, "could not raise the open-file limit");
    }
    let secret = |value: &str, default: &str| if value == default { value.to_owned() } else { "(as given)".to_owned() };
    let banner = format!(
        "otp sandbox listening on {{base}}\n\
         \x20 inbox:   {{base}}/__sandbox/ (the codes as they arrive, in a browser)\n\
         \x20 otps:    GET {{base}}/__sandbox/otps?mobile=NNNNNNNNNN (at most 100; POST /__sandbox/reset forgets all)\n\
         \x20 health:  GET {{base}}/__sandbox/health\n\
         \x20 phonepe: merchant id {}, salt key {}, salt index {}\n\
         \x20 paytm:   client id {}, client secret {}\n\
         \x20 iserveu: client_id {}, client_secret {}, username {}\n\
         \x20 aopay:   RegistrationID {}\n\
         {}(sandbox credentials are test values; Ctrl-C stops)",
        config.credentials.phonepe.merchant_id,
        secret(&config.credentials.phonepe.salt_key, credentials::PHONEPE_SALT_KEY),
        config.credentials.phonepe.salt_index,
        config.credentials.paytm.client_id,
        secret(&config.credentials.paytm.client_secret, credentials::PAYTM_CLIENT_SECRET),
        config.credentials.iserveu.client_id,
        secret(&config.credentials.iserveu.client_secret, credentials::ISERVEU_CLIENT_SECRET),
        config.credentials.iserveu.username,
        config.credentials.aopay.registration_id,
        if config.admin_token.is_some() { "/__sandbox/* routes need Authorization: Bearer <token>\n" } else { "" },
    );
    let mut sandbox = match Sandbox::bind(command.addr, config).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            let failure = Failure::Internal(format!("the sandbox could not listen on {}: {error}", command.addr));
            return output::failure(None, &failure, false);
        }
    };
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{}", banner.replace("{base}", &sandbox.base_url()));
        let _ = stdout.flush();
    }
    let signalled = tokio::select! {
        () = shutdown_signal() => true,
        () = sandbox.wait() => false,
    };
    if !signalled {
        return ExitCode::from(output::exit::OTHER);
    }
    sandbox.shutdown(Duration::from_secs(5)).await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
