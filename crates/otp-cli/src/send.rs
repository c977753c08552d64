//! `otp send` and `otp sandbox`: from flags and environment to a client, a request and a send.

use std::process::ExitCode;
use std::time::Duration;

use otp::{
    aopay, iserveu, paytm, phonepe, Amount, ClientOptions, Coordinates, Environment, Error, Gateway, GatewayClient,
    HttpOptions, IdentityNumber, MobileNumber, Pincode, SendOtpRequest,
};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};

use crate::args::{
    AOPayArgs, CommonArgs, EnvName, GatewayArgs, IServeUArgs, IServeUOtpType, PaytmArgs, PhonePeArgs,
    PhonePeRequestType, SandboxCommand, SendCommand,
};
use crate::output::{self, Failure};

/// The longest `--timeout` accepted: an hour is already far past any gateway's patience.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

pub async fn run(command: SendCommand) -> ExitCode {
    let args = command.gateway;
    let gateway = args.gateway();
    let json = args.common().json;
    let mobile = match args.common().mobile.parse::<MobileNumber>() {
        Ok(mobile) => mobile,
        Err(error) => {
            let error = Error::from(error).with_gateway(gateway);
            return output::failure(Some(gateway), &Failure::Otp(error), json);
        }
    };
    match send(&args, mobile).await {
        Ok(receipt) => output::success(&receipt, &mobile, json),
        Err(failure) => output::failure(Some(gateway), &failure, json),
    }
}

async fn send(args: &GatewayArgs, mobile: MobileNumber) -> Result<otp::SendReceipt, Failure> {
    let common = args.common();
    let gateway = args.gateway();
    let tag = |error: Error| error.with_gateway(gateway);
    let http = http_options(common).map_err(tag)?;
    // Every input is checked before credentials are read or anything is started.
    let request = build_request(args, mobile).map_err(tag)?;
    let sandbox = match common.sandbox {
        true => Some(
            Sandbox::start(SandboxConfig::default())
                .await
                .map_err(|error| Failure::Internal(format!("the embedded sandbox could not start: {error}")))?,
        ),
        false => None,
    };
    let environment = match (&sandbox, &common.base_url, common.env) {
        (Some(sandbox), _, _) => Environment::Custom(sandbox.base_url()),
        (None, Some(base_url), _) => Environment::Custom(base_url.clone()),
        (None, None, Some(EnvName::Production)) => Environment::Production,
        (None, None, Some(EnvName::Uat) | None) => Environment::Uat,
    };
    let client = build_client(args, environment, http, sandbox.is_some()).map_err(tag)?;
    let result = client.send_otp(&request).await;
    drop(sandbox);
    Ok(result?)
}

fn http_options(common: &CommonArgs) -> Result<HttpOptions, Error> {
    let secs = common.timeout;
    if !(secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        return Err(Error::invalid_input(format!(
            "--timeout must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"
        )));
    }
    Ok(HttpOptions::default().timeout(Duration::from_secs_f64(secs)).allow_insecure_http(common.allow_http))
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
                let (lat, long) = lat_long
                    .split_once(',')
                    .ok_or_else(|| Error::invalid_input("--lat-long must be \"LATITUDE,LONGITUDE\""))?;
                request = request.coordinates(Coordinates::new(lat.trim(), long.trim())?);
            }
            if let Some(ip) = &$args.public_ip {
                let ip = ip
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| Error::invalid_input("public IP must be an IPv4 or IPv6 address"))?;
                request = request.public_ip(ip);
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
    args: &GatewayArgs,
    environment: Environment,
    http: HttpOptions,
    sandbox: bool,
) -> Result<GatewayClient, Error> {
    let options = ClientOptions::new().environment(environment).http(http);
    if sandbox {
        // The sandbox's own credentials; an iServeU --username still travels on the request.
        return otp::sandbox::client(args.gateway(), options);
    }
    let mut env = Credentials::new();
    let client: GatewayClient = match args {
        GatewayArgs::Phonepe(_) => {
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
        GatewayArgs::Paytm(_) => {
            let (client_id, client_secret) = (env.var("OTP_PAYTM_CLIENT_ID"), env.var("OTP_PAYTM_CLIENT_SECRET"));
            env.finish(Gateway::Paytm)?;
            paytm::PaytmClient::builder()
                .client_id(client_id)
                .client_secret(client_secret)
                .options(options)
                .build()?
                .into()
        }
        GatewayArgs::Iserveu(args) => {
            let client_id = env.var("OTP_ISERVEU_CLIENT_ID");
            let client_secret = env.var("OTP_ISERVEU_CLIENT_SECRET");
            let username = match &args.username {
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
        GatewayArgs::Aopay(_) => {
            let registration_id = env.var("OTP_AOPAY_REGISTRATION_ID");
            env.finish(Gateway::AOPay)?;
            aopay::AOPayClient::builder().registration_id(registration_id).options(options).build()?.into()
        }
    };
    Ok(client)
}

/// `otp sandbox`: serve until Ctrl-C (or SIGTERM, for containers).
pub async fn serve_sandbox(command: SandboxCommand) -> ExitCode {
    let sandbox = match Sandbox::bind(command.addr, SandboxConfig::default()).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            let failure = Failure::Internal(format!("the sandbox could not listen on {}: {error}", command.addr));
            return output::failure(None, &failure, false);
        }
    };
    let base = sandbox.base_url();
    let banner = format!(
        "otp sandbox listening on {base}\n\
         \x20 inbox:   GET {base}/__sandbox/otps?mobile=NNNNNNNNNN\n\
         \x20 health:  GET {base}/__sandbox/health\n\
         \x20 phonepe: merchant id {}, salt key {}, salt index {}\n\
         \x20 paytm:   client id {}, client secret {}\n\
         \x20 iserveu: client_id {}, client_secret {}, username {}\n\
         \x20 aopay:   RegistrationID {}\n\
         (sandbox credentials are public test values; Ctrl-C stops)",
        credentials::PHONEPE_MERCHANT_ID,
        credentials::PHONEPE_SALT_KEY,
        credentials::PHONEPE_SALT_INDEX,
        credentials::PAYTM_CLIENT_ID,
        credentials::PAYTM_CLIENT_SECRET,
        credentials::ISERVEU_CLIENT_ID,
        credentials::ISERVEU_CLIENT_SECRET,
        credentials::ISERVEU_USERNAME,
        credentials::AOPAY_REGISTRATION_ID,
    );
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{banner}");
        let _ = stdout.flush();
    }
    tokio::select! {
        () = shutdown_signal() => ExitCode::SUCCESS,
        () = sandbox.wait() => ExitCode::from(output::exit::OTHER),
    }
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
