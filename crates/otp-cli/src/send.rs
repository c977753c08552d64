//! `otp send`, `otp verify` and `otp sandbox`: from flags and environment to a client, a
//! request, a send and a verification.

use std::process::ExitCode;
use std::time::Duration;

use std::io::{IsTerminal as _, Write as _};

use otp::{
    aopay, iserveu, paytm, phonepe, Amount, ClientOptions, Coordinates, Environment, Error, Gateway, GatewayClient,
    HttpOptions, IdentityNumber, MobileNumber, OtpCode, Outcome, Pincode, SecretString, SendOtpRequest, VerifyReceipt,
    VerifyRequest,
};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};

use crate::args::{
    AOPayArgs, ConnectionArgs, EnvName, GatewayArgs, IServeUArgs, IServeUOtpType, PaytmArgs, PhonePeArgs,
    PhonePeRequestType, SandboxCommand, SendCommand, VerifyCommand, VerifyGatewayArgs,
};
use crate::output::{self, Failure};

/// The longest `--timeout` accepted: an hour is already far past any gateway's patience.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

pub async fn run(command: SendCommand) -> ExitCode {
    let args = command.gateway;
    let gateway = args.gateway();
    let common = args.common();
    let json = common.connection.json;
    output::set_raw_provider_text(common.connection.raw_provider_text);
    let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
    let mobile = match args.common().mobile.parse::<MobileNumber>() {
        Ok(mobile) => mobile,
        Err(error) => return output::failure(Some(gateway), &tag(Error::from(error)), json),
    };
    // Every input, the verify step's included, is checked before anything is started or sent.
    let prepared = build_request(&args, mobile).and_then(|request| Ok((request, verify_plan(&args)?)));
    let (request, plan) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return output::failure(Some(gateway), &tag(error), json),
    };
    let target = match Target::start(&common.connection, gateway, username(&args)).await {
        Ok(target) => target,
        Err(failure) => return output::failure(Some(gateway), &failure, json),
    };
    let sent = target.client.send_otp(&request).await.map_err(Failure::Otp);
    let Some(plan) = plan else {
        return match sent {
            Ok(receipt) => output::success(&receipt, &mobile, json),
            Err(failure) => output::failure(Some(gateway), &failure, json),
        };
    };
    let verified = match &sent {
        Ok(receipt) => Some(verify_after_send(&target, plan, receipt, mobile).await),
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
    async fn start(connection: &ConnectionArgs, gateway: Gateway, username: Option<&String>) -> Result<Self, Failure> {
        let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
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
        let client = build_client(gateway, username, environment, http, sandbox.is_some()).map_err(tag)?;
        Ok(Self { client, sandbox })
    }
}

/// iServeU's `--username`, which its client needs.
fn username(args: &GatewayArgs) -> Option<&String> {
    match args {
        GatewayArgs::Iserveu(args) => args.username.as_ref(),
        _ => None,
    }
}

/// What `--verify` will need once the send answers; refused up front when the OTP has no
/// verify call, so that nothing is sent for nothing.
enum VerifyPlan {
    PhonePe { device_id: Option<String> },
    Paytm { device_id: String },
    IServeU { name: String },
    AOPay { kyc_id: Option<String> },
}

fn verify_plan(args: &GatewayArgs) -> Result<Option<VerifyPlan>, Error> {
    if !args.common().verify {
        return Ok(None);
    }
    let plan = match args {
        GatewayArgs::Phonepe(args) => VerifyPlan::PhonePe { device_id: args.device_id.clone() },
        GatewayArgs::Paytm(args) => VerifyPlan::Paytm { device_id: args.device_id.clone() },
        GatewayArgs::Iserveu(args) => {
            if args.otp_type == IServeUOtpType::Transaction {
                return Err(Error::invalid_input(
                    "--verify: a transaction OTP is consumed by iServeU's money-transfer call (with the same \
                     --external-ref), not by a verify call; nothing was sent",
                ));
            }
            let name = args.name.clone().ok_or_else(|| {
                Error::invalid_input("--verify on an iServeU registration OTP needs --name (the customer's name)")
            })?;
            VerifyPlan::IServeU { name }
        }
        GatewayArgs::Aopay(args) => VerifyPlan::AOPay { kyc_id: args.kyc_id.clone() },
    };
    Ok(Some(plan))
}

async fn verify_after_send(
    target: &Target,
    plan: VerifyPlan,
    receipt: &otp::SendReceipt,
    mobile: MobileNumber,
) -> Result<VerifyReceipt, Failure> {
    let gateway = receipt.gateway;
    let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
    let reference = || {
        receipt.reference.clone().ok_or_else(|| tag(Error::invalid_input("the send returned no reference to verify")))
    };
    let request: VerifyRequest = match plan {
        VerifyPlan::AOPay { .. } if receipt.outcome != Outcome::SentForRegistration => {
            return Err(tag(Error::invalid_input(
                "AOPay answered code 1: a transaction OTP, consumed by AOPay's transfer call, not by \
                 RegisterRemitter; nothing was verified",
            )));
        }
        plan => {
            let code = read_code(target.sandbox.as_ref(), &mobile).map_err(tag)?;
            match plan {
                VerifyPlan::PhonePe { device_id } => {
                    let request = phonepe::VerifyOtpRequest::new(reference()?, code);
                    match device_id {
                        Some(device_id) => request.device_id(device_id).into(),
                        None => request.into(),
                    }
                }
                VerifyPlan::Paytm { device_id } => {
                    paytm::VerifyOtpRequest::new(reference()?, code, device_id).map_err(tag)?.into()
                }
                VerifyPlan::IServeU { name } => iserveu::CompleteRegistrationRequest::new(mobile, code, name).into(),
                VerifyPlan::AOPay { kyc_id } => {
                    let request = aopay::RegisterRemitterRequest::new(mobile, code, reference()?);
                    match kyc_id {
                        Some(kyc_id) => request.kyc_id(kyc_id).into(),
                        None => request.into(),
                    }
                }
            }
        }
    };
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

/// `otp verify`: one verification.
pub async fn verify(command: VerifyCommand) -> ExitCode {
    let args = command.gateway;
    let gateway = args.gateway();
    let code_args = args.code();
    let json = code_args.connection.json;
    output::set_raw_provider_text(code_args.connection.raw_provider_text);
    let tag = |error: Error| Failure::Otp(error.with_gateway(gateway));
    let request = match build_verify_request(&args) {
        Ok(request) => request,
        Err(error) => return output::failure(Some(gateway), &tag(error), json),
    };
    let username = match &args {
        VerifyGatewayArgs::Iserveu(args) => args.username.as_ref(),
        _ => None,
    };
    let target = match Target::start(&code_args.connection, gateway, username).await {
        Ok(target) => target,
        Err(failure) => return output::failure(Some(gateway), &failure, json),
    };
    match target.client.verify_otp(&request).await {
        Ok(receipt) => output::verified(&receipt, code_args.connection.show_credential, json),
        Err(error) => output::failure(Some(gateway), &Failure::Verify(error), json),
    }
}

fn build_verify_request(args: &VerifyGatewayArgs) -> Result<VerifyRequest, Error> {
    let code = match args.code().otp.as_str() {
        "-" => read_line_code()?,
        code => OtpCode::parse(code)?,
    };
    let request: VerifyRequest = match args {
        VerifyGatewayArgs::Phonepe(args) => {
            let request = phonepe::VerifyOtpRequest::new(SecretString::new(args.reference.as_str()), code);
            let request = match &args.device_id {
                Some(device_id) => request.device_id(device_id),
                None => request,
            };
            request.validate()?;
            request.into()
        }
        VerifyGatewayArgs::Paytm(args) => {
            paytm::VerifyOtpRequest::new(SecretString::new(args.reference.as_str()), code, &args.device_id)?.into()
        }
        VerifyGatewayArgs::Iserveu(args) => {
            let mobile: MobileNumber = args.mobile.parse()?;
            let mut request = iserveu::CompleteRegistrationRequest::new(mobile, code, &args.name);
            if let Some(lat_long) = &args.lat_long {
                request = request.coordinates(parse_lat_long(lat_long)?);
            }
            if let Some(ip) = &args.public_ip {
                request = request.public_ip(parse_ip(ip)?);
            }
            if let Some(username) = &args.username {
                request = request.username(username);
            }
            request.into()
        }
        VerifyGatewayArgs::Aopay(args) => {
            let mobile: MobileNumber = args.mobile.parse()?;
            let request = aopay::RegisterRemitterRequest::new(mobile, code, SecretString::new(args.reference.as_str()));
            match &args.kyc_id {
                Some(kyc_id) => request.kyc_id(kyc_id).into(),
                None => request.into(),
            }
        }
    };
    Ok(request)
}

/// `--lat-long "LAT,LONG"`.
fn parse_lat_long(lat_long: &str) -> Result<Coordinates, Error> {
    let (lat, long) =
        lat_long.split_once(',').ok_or_else(|| Error::invalid_input("--lat-long must be \"LATITUDE,LONGITUDE\""))?;
    Coordinates::new(lat.trim(), long.trim())
}

/// `--public-ip`.
fn parse_ip(ip: &str) -> Result<std::net::IpAddr, Error> {
    ip.parse().map_err(|_| Error::invalid_input("public IP must be an IPv4 or IPv6 address"))
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

fn build_request(args: &GatewayArgs, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
    let request = match args {
        GatewayArgs::Phonepe(args) => phonepe_request(args, mobile)?,
        GatewayArgs::Paytm(args) => paytm_request(args, mobile)?,
        GatewayArgs::Iserveu(args) => iserveu_request(args, mobile)?,
        GatewayArgs::Aopay(args) => aopay_request(args, mobile)?,
    };
    Ok(request)
}

fn phonepe_request(args: &PhonePeArgs, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
    let mut request = phonepe::SendOtpRequest::new(mobile);
    if let Some(email) = &args.email {
        request = request.email(email);
    }
    if let Some(name) = &args.name {
        request = request.short_name(name);
    }
    if let Some(kind) = args.request_type {
        request = request.request_type(match kind {
            PhonePeRequestType::Wallet => phonepe::RequestType::Wallet,
            PhonePeRequestType::Credit => phonepe::RequestType::Credit,
        });
    }
    if let Some(device_id) = &args.device_id {
        request = request.device_id(device_id);
    }
    request.validate()?;
    Ok(request.into())
}

fn paytm_request(args: &PaytmArgs, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
    let mut request = paytm::SendOtpRequest::new(mobile, &args.device_id).locale(&args.locale);
    for scope in &args.scopes {
        request = request.scope(scope);
    }
    if let Some(hash) = &args.auto_read_hash {
        request = request.auto_read_hash(hash);
    }
    request.validate()?;
    Ok(request.into())
}

fn iserveu_request(args: &IServeUArgs, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
    let ovd_data = args.ovd_data.as_deref().map(IdentityNumber::new);
    // Both request types take the same optional fields; each is its own type, so a macro
    // applies them to either.
    macro_rules! with_optional_fields {
        ($request:expr, $args:expr) => {{
            let mut request = $request;
            if let Some(lat_long) = &$args.lat_long {
                request = request.coordinates(parse_lat_long(lat_long)?);
            }
            if let Some(ip) = &$args.public_ip {
                request = request.public_ip(parse_ip(ip)?);
            }
            if let Some(username) = &$args.username {
                request = request.username(username);
            }
            Ok::<_, Error>(request.params($args.param_a.clone(), $args.param_b.clone(), $args.param_c.clone()))
        }};
    }
    let request: iserveu::SendOtpRequest = match args.otp_type {
        IServeUOtpType::Registration => {
            if args.amount.is_some() {
                return Err(Error::invalid_input("--amount applies to transaction OTPs only"));
            }
            let ovd_data =
                ovd_data.ok_or_else(|| Error::invalid_input("--ovd-data is required for a registration OTP"))?;
            let request = iserveu::RegistrationOtpRequest::new(mobile, &args.ovd_type, ovd_data);
            let request = match &args.external_ref {
                Some(reference) => request.external_ref(reference),
                None => request,
            };
            with_optional_fields!(request, args)?.into()
        }
        IServeUOtpType::Transaction => {
            let reference = args
                .external_ref
                .as_deref()
                .ok_or_else(|| Error::invalid_input("--external-ref is required for a transaction OTP"))?;
            let amount = args
                .amount
                .as_deref()
                .ok_or_else(|| Error::invalid_input("--amount is required for a transaction OTP"))?;
            let request =
                iserveu::TransactionOtpRequest::new(mobile, &args.ovd_type, reference, Amount::parse(amount)?);
            let request = match ovd_data {
                Some(ovd) => request.ovd_data(ovd),
                None => request,
            };
            with_optional_fields!(request, args)?.into()
        }
    };
    Ok(request.into())
}

fn aopay_request(args: &AOPayArgs, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
    let remitter = aopay::Remitter::new(
        args.address.as_str(),
        Pincode::parse(&args.pincode)?,
        aopay::DateOfBirth::parse(&args.dob)?,
        Coordinates::new(&args.latitude, &args.longitude)?,
    )?;
    let amount = Amount::parse(&args.amount)?;
    let request = aopay::SendOtpRequest::new(mobile, args.bene_id.as_str(), args.txn_type.parse()?, amount, remitter)?;
    Ok(request.into())
}

/// Credentials from the environment, collecting every missing name so one run shows them all.
struct Credentials {
    missing: Vec<&'static str>,
}

impl Credentials {
    fn new() -> Self {
        Self { missing: Vec::new() }
    }

    fn var(&mut self, name: &'static str) -> String {
        self.var_shown_as(name, name)
    }

    /// A variable that a flag can stand in for: the message says so.
    fn var_shown_as(&mut self, name: &'static str, shown: &'static str) -> String {
        match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => value,
            _ => {
                self.missing.push(shown);
                String::new()
            }
        }
    }

    fn finish(self, gateway: Gateway) -> Result<(), Error> {
        if self.missing.is_empty() {
            return Ok(());
        }
        Err(Error::configuration(format!(
            "missing credentials for {gateway}: set {}; or pass --sandbox to send to the embedded sandbox",
            self.missing.join(", ")
        )))
    }
}

fn build_client(
    gateway: Gateway,
    username: Option<&String>,
    environment: Environment,
    http: HttpOptions,
    sandbox: bool,
) -> Result<GatewayClient, Error> {
    let options = ClientOptions::new().environment(environment).http(http);
    if sandbox {
        // The sandbox's own credentials; an iServeU --username still travels on the request.
        return otp::sandbox::client(gateway, options);
    }
    let mut env = Credentials::new();
    let client: GatewayClient = match gateway {
        Gateway::PhonePe => {
            let merchant_id = env.var("OTP_PHONEPE_MERCHANT_ID");
            let salt_key = env.var("OTP_PHONEPE_SALT_KEY");
            let salt_index = env.var("OTP_PHONEPE_SALT_INDEX");
            env.finish(Gateway::PhonePe)?;
            let salt_index = salt_index.trim().parse::<u32>().ok().filter(|i| *i > 0).ok_or_else(|| {
                Error::configuration("OTP_PHONEPE_SALT_INDEX must be a positive integer (the index of the salt key)")
            })?;
            phonepe::PhonePeClient::builder()
                .merchant_id(merchant_id)
                .salt_key(salt_key)
                .salt_index(salt_index)
                .options(options)
                .build()?
                .into()
        }
        Gateway::Paytm => {
            let (client_id, client_secret) = (env.var("OTP_PAYTM_CLIENT_ID"), env.var("OTP_PAYTM_CLIENT_SECRET"));
            env.finish(Gateway::Paytm)?;
            paytm::PaytmClient::builder()
                .client_id(client_id)
                .client_secret(client_secret)
                .options(options)
                .build()?
                .into()
        }
        Gateway::IServeU => {
            let client_id = env.var("OTP_ISERVEU_CLIENT_ID");
            let client_secret = env.var("OTP_ISERVEU_CLIENT_SECRET");
            let username = match username {
                Some(username) => username.clone(),
                None => env.var_shown_as("OTP_ISERVEU_USERNAME", "OTP_ISERVEU_USERNAME (or --username)"),
            };
            env.finish(Gateway::IServeU)?;
            iserveu::IServeUClient::builder()
                .client_id(client_id)
                .client_secret(client_secret)
                .username(username)
                .options(options)
                .build()?
                .into()
        }
        Gateway::AOPay => {
            let registration_id = env.var("OTP_AOPAY_REGISTRATION_ID");
            env.finish(Gateway::AOPay)?;
            aopay::AOPayClient::builder().registration_id(registration_id).options(options).build()?.into()
        }
        other => return Err(Error::configuration(format!("{other} is not supported by this command"))),
    };
    Ok(client)
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
    set(&command.phonepe_merchant_id, &mut config.phonepe_merchant_id);
    set(&command.phonepe_salt_key, &mut config.phonepe_salt_key);
    if let Some(index) = command.phonepe_salt_index {
        config.phonepe_salt_index = index;
    }
    set(&command.paytm_client_id, &mut config.paytm_client_id);
    set(&command.paytm_client_secret, &mut config.paytm_client_secret);
    set(&command.iserveu_client_id, &mut config.iserveu_client_id);
    set(&command.iserveu_client_secret, &mut config.iserveu_client_secret);
    set(&command.iserveu_username, &mut config.iserveu_username);
    set(&command.aopay_registration_id, &mut config.aopay_registration_id);
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
         \x20 inbox:   GET {{base}}/__sandbox/otps?mobile=NNNNNNNNNN (at most 100; POST /__sandbox/reset forgets all)\n\
         \x20 health:  GET {{base}}/__sandbox/health\n\
         \x20 phonepe: merchant id {}, salt key {}, salt index {}\n\
         \x20 paytm:   client id {}, client secret {}\n\
         \x20 iserveu: client_id {}, client_secret {}, username {}\n\
         \x20 aopay:   RegistrationID {}\n\
         {}(sandbox credentials are test values; Ctrl-C stops)",
        config.phonepe_merchant_id,
        secret(&config.phonepe_salt_key, credentials::PHONEPE_SALT_KEY),
        config.phonepe_salt_index,
        config.paytm_client_id,
        secret(&config.paytm_client_secret, credentials::PAYTM_CLIENT_SECRET),
        config.iserveu_client_id,
        secret(&config.iserveu_client_secret, credentials::ISERVEU_CLIENT_SECRET),
        config.iserveu_username,
        config.aopay_registration_id,
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
