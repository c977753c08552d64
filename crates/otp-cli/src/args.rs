//! The command line, exactly as `shared/spec/cli.md` gives it.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Send one-time passwords through Indian payment gateways, or serve their sandbox.
#[derive(Debug, Parser)]
#[command(name = "otp", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // Parsed once per run; boxing would only obscure it.
pub enum Command {
    /// Send one OTP through a gateway (and, with --verify, verify the code).
    Send(SendCommand),
    /// Verify a code against a send's reference (the second step).
    Verify(VerifyCommand),
    /// Serve the gateway sandbox (the same routes as the real gateways) until interrupted.
    Sandbox(SandboxCommand),
}

#[derive(Debug, Args)]
pub struct SendCommand {
    #[command(subcommand)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, Args)]
pub struct VerifyCommand {
    #[command(subcommand)]
    pub gateway: VerifyGatewayArgs,
}

#[derive(Debug, Args)]
pub struct SandboxCommand {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Allow an address other than loopback (0.0.0.0 included); then an admin token is required
    /// (--token-file or OTP_SANDBOX_TOKEN, at least 16 characters).
    #[arg(long)]
    pub allow_remote: bool,
    /// Read the admin token from the first line of this file; every /__sandbox/* route then
    /// requires it (Authorization: Bearer TOKEN). Or set OTP_SANDBOX_TOKEN instead (not both).
    /// There is no flag for the token itself: a command line is visible to every user (ps).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<std::path::PathBuf>,
    /// Issue this code every time (e.g. 123456) instead of random ones.
    #[arg(long)]
    pub fixed_otp: Option<String>,
    /// How long a PhonePe, Paytm or iServeU OTP stays verifiable, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub otp_validity: u64,
    /// How long an AOPay OTP stays valid, in seconds.
    #[arg(long, default_value_t = 90, value_name = "SECS")]
    pub aopay_otp_validity: u64,
    /// The window of the per-number send limit (the 6th send inside it is refused), in seconds;
    /// 0 turns the limit off.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub limit_window: u64,
    /// The most numbers kept. A number with nothing live (no unexpired OTP, no send inside the
    /// limit window) makes room for a new one; a live one never does: when all are live, a send
    /// to a new number is refused with HTTP 503.
    #[arg(long, default_value_t = otp_sandbox::DEFAULT_MAX_NUMBERS)]
    pub max_numbers: usize,
    /// The most connections served normally at once (as many again get a 1 s header timeout).
    #[arg(long, default_value_t = 1_000)]
    pub max_connections: usize,
    /// PhonePe merchantId it accepts.
    #[arg(long, env = "OTP_SANDBOX_PHONEPE_MERCHANT_ID")]
    pub phonepe_merchant_id: Option<String>,
    /// PhonePe salt key it accepts.
    #[arg(long, env = "OTP_SANDBOX_PHONEPE_SALT_KEY", hide_env_values = true)]
    pub phonepe_salt_key: Option<String>,
    /// PhonePe salt index it accepts.
    #[arg(long, env = "OTP_SANDBOX_PHONEPE_SALT_INDEX")]
    pub phonepe_salt_index: Option<u32>,
    /// Paytm client id it accepts.
    #[arg(long, env = "OTP_SANDBOX_PAYTM_CLIENT_ID")]
    pub paytm_client_id: Option<String>,
    /// Paytm client secret it accepts.
    #[arg(long, env = "OTP_SANDBOX_PAYTM_CLIENT_SECRET", hide_env_values = true)]
    pub paytm_client_secret: Option<String>,
    /// iServeU client_id it accepts.
    #[arg(long, env = "OTP_SANDBOX_ISERVEU_CLIENT_ID")]
    pub iserveu_client_id: Option<String>,
    /// iServeU client_secret it accepts.
    #[arg(long, env = "OTP_SANDBOX_ISERVEU_CLIENT_SECRET", hide_env_values = true)]
    pub iserveu_client_secret: Option<String>,
    /// iServeU username it accepts.
    #[arg(long, env = "OTP_SANDBOX_ISERVEU_USERNAME")]
    pub iserveu_username: Option<String>,
    /// AOPay RegistrationID it accepts.
    #[arg(long, env = "OTP_SANDBOX_AOPAY_REGISTRATION_ID")]
    pub aopay_registration_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GatewayArgs {
    /// PhonePe "Trigger OTP" (wallet linking), X-VERIFY signed.
    /// Credentials: OTP_PHONEPE_MERCHANT_ID, OTP_PHONEPE_SALT_KEY, OTP_PHONEPE_SALT_INDEX.
    Phonepe(PhonePeArgs),
    /// Paytm "Send OTP". Credentials: OTP_PAYTM_CLIENT_ID, OTP_PAYTM_CLIENT_SECRET.
    Paytm(PaytmArgs),
    /// iServeU DMT-lite send OTP.
    /// Credentials: OTP_ISERVEU_CLIENT_ID, OTP_ISERVEU_CLIENT_SECRET, OTP_ISERVEU_USERNAME (or --username).
    Iserveu(IServeUArgs),
    /// AOPay DMTV1 "Transaction Send OTP". Credentials: OTP_AOPAY_REGISTRATION_ID.
    Aopay(AOPayArgs),
}

impl GatewayArgs {
    pub fn common(&self) -> &CommonArgs {
        match self {
            GatewayArgs::Phonepe(args) => &args.common,
            GatewayArgs::Paytm(args) => &args.common,
            GatewayArgs::Iserveu(args) => &args.common,
            GatewayArgs::Aopay(args) => &args.common,
        }
    }

    pub fn gateway(&self) -> otp::Gateway {
        match self {
            GatewayArgs::Phonepe(_) => otp::Gateway::PhonePe,
            GatewayArgs::Paytm(_) => otp::Gateway::Paytm,
            GatewayArgs::Iserveu(_) => otp::Gateway::IServeU,
            GatewayArgs::Aopay(_) => otp::Gateway::AOPay,
        }
    }
}

/// Where and how a command sends: every command takes these.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Print exactly one JSON object on stdout, success or failure.
    #[arg(long)]
    pub json: bool,
    /// Start the embedded sandbox on a free loopback port and send to it with its credentials.
    #[arg(long, conflicts_with_all = ["env", "base_url"])]
    pub sandbox: bool,
    /// The provider's documented host [default: uat].
    #[arg(long, value_enum)]
    pub env: Option<EnvName>,
    /// Send to this base URL instead; the API path is appended to it.
    #[arg(long, conflicts_with = "env")]
    pub base_url: Option<String>,
    /// Whole-request deadline in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub timeout: f64,
    /// Allow a plain-http base URL that is not loopback (loopback http is always allowed).
    #[arg(long)]
    pub allow_http: bool,
    /// Print the credential a verification returns (userAuthToken, Paytm's access token).
    #[arg(long)]
    pub show_credential: bool,
    /// Put the provider's message into the JSON verbatim (numbers in it are masked otherwise).
    #[arg(long)]
    pub raw_provider_text: bool,
}

/// Flags every gateway's send takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The customer's mobile number (10 digits; +91, 91 or 0 prefixes and spaces are accepted).
    #[arg(long)]
    pub mobile: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// After sending, read the code (the terminal, stdin, or with --sandbox its inbox) and verify it.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvName {
    Uat,
    Production,
}

#[derive(Debug, Args)]
pub struct PhonePeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The customer's email.
    #[arg(long)]
    pub email: Option<String>,
    /// The customer's short name.
    #[arg(long)]
    pub name: Option<String>,
    /// WALLET or CREDIT.
    #[arg(long, value_enum)]
    pub request_type: Option<PhonePeRequestType>,
    /// The device id, sent as X-DEVICE-ID (at most 64 characters).
    #[arg(long)]
    pub device_id: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PhonePeRequestType {
    Wallet,
    Credit,
}

#[derive(Debug, Args)]
pub struct PaytmArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The device identifier (x-device-identifier).
    #[arg(long)]
    pub device_id: String,
    /// A scope to ask for; repeat for more.
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// The app's SMS auto-read hash.
    #[arg(long)]
    pub auto_read_hash: Option<String>,
    /// The locale query parameter.
    #[arg(long, default_value = "en-IN")]
    pub locale: String,
}

#[derive(Debug, Args)]
pub struct IServeUArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// registration (1) or transaction (2).
    #[arg(long, value_parser = parse_otp_type)]
    pub otp_type: IServeUOtpType,
    /// The officially valid document type (e.g. AADHAAR).
    #[arg(long)]
    pub ovd_type: String,
    /// The document number: required for registration, optional for transaction.
    #[arg(long)]
    pub ovd_data: Option<String>,
    /// The external reference (6–22 characters): required for transaction.
    #[arg(long)]
    pub external_ref: Option<String>,
    /// The amount: required for transaction.
    #[arg(long, allow_hyphen_values = true)]
    pub amount: Option<String>,
    /// "LAT,LONG".
    #[arg(long)]
    pub lat_long: Option<String>,
    /// The customer's public IP (IPv4 or IPv6).
    #[arg(long)]
    pub public_ip: Option<String>,
    /// The iServeU username (overrides OTP_ISERVEU_USERNAME).
    #[arg(long)]
    pub username: Option<String>,
    /// paramA, returned as sent.
    #[arg(long)]
    pub param_a: Option<String>,
    /// paramB, returned as sent.
    #[arg(long)]
    pub param_b: Option<String>,
    /// paramC, returned as sent.
    #[arg(long)]
    pub param_c: Option<String>,
    /// With --verify: the customer's name, for the registration that consumes the OTP.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IServeUOtpType {
    Registration,
    Transaction,
}

fn parse_otp_type(value: &str) -> Result<IServeUOtpType, String> {
    match value.to_ascii_lowercase().as_str() {
        "registration" | "1" => Ok(IServeUOtpType::Registration),
        "transaction" | "2" => Ok(IServeUOtpType::Transaction),
        _ => Err("expected registration, transaction, 1 or 2".into()),
    }
}

#[derive(Debug, Args)]
pub struct AOPayArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The beneficiary id.
    #[arg(long)]
    pub bene_id: String,
    /// imps or neft.
    #[arg(long)]
    pub txn_type: String,
    /// The amount.
    #[arg(long, allow_hyphen_values = true)]
    pub amount: String,
    /// The 6-digit pincode.
    #[arg(long)]
    pub pincode: String,
    /// The remitter's address.
    #[arg(long)]
    pub address: String,
    /// Date of birth, DD/MM/YYYY.
    #[arg(long)]
    pub dob: String,
    /// Latitude (decimal).
    #[arg(long, allow_hyphen_values = true)]
    pub latitude: String,
    /// Longitude (decimal).
    #[arg(long, allow_hyphen_values = true)]
    pub longitude: String,
    /// With --verify: the remitter's KycId for RegisterRemitter.
    #[arg(long)]
    pub kyc_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VerifyGatewayArgs {
    /// PhonePe "Verify OTP and link": --reference is the send's otpToken.
    Phonepe(PhonePeVerifyArgs),
    /// Paytm "Validate OTP": --reference is the send's state_token.
    Paytm(PaytmVerifyArgs),
    /// iServeU customer registration with a registration OTP (no --reference).
    Iserveu(IServeUVerifyArgs),
    /// AOPay RegisterRemitter: --reference is the send's stateresp (a code-0 answer's).
    Aopay(AOPayVerifyArgs),
}

impl VerifyGatewayArgs {
    pub fn code(&self) -> &CodeArgs {
        match self {
            VerifyGatewayArgs::Phonepe(args) => &args.code,
            VerifyGatewayArgs::Paytm(args) => &args.code,
            VerifyGatewayArgs::Iserveu(args) => &args.code,
            VerifyGatewayArgs::Aopay(args) => &args.code,
        }
    }

    pub fn gateway(&self) -> otp::Gateway {
        match self {
            VerifyGatewayArgs::Phonepe(_) => otp::Gateway::PhonePe,
            VerifyGatewayArgs::Paytm(_) => otp::Gateway::Paytm,
            VerifyGatewayArgs::Iserveu(_) => otp::Gateway::IServeU,
            VerifyGatewayArgs::Aopay(_) => otp::Gateway::AOPay,
        }
    }
}

/// The code, and where to send it.
#[derive(Debug, Args)]
pub struct CodeArgs {
    /// The code the customer typed; `-` reads it from standard input (a command line is
    /// visible to other users of the machine).
    #[arg(long)]
    pub otp: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct PhonePeVerifyArgs {
    /// The send's reference (otpToken).
    #[arg(long)]
    pub reference: String,
    #[command(flatten)]
    pub code: CodeArgs,
    /// X-DEVICE-ID: the one the send carried.
    #[arg(long)]
    pub device_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct PaytmVerifyArgs {
    /// The send's reference (state_token).
    #[arg(long)]
    pub reference: String,
    #[command(flatten)]
    pub code: CodeArgs,
    /// The device identifier the send used.
    #[arg(long)]
    pub device_id: String,
}

#[derive(Debug, Args)]
pub struct IServeUVerifyArgs {
    /// The number the registration OTP went to.
    #[arg(long)]
    pub mobile: String,
    #[command(flatten)]
    pub code: CodeArgs,
    /// The customer's name.
    #[arg(long)]
    pub name: String,
    /// The iServeU username (overrides OTP_ISERVEU_USERNAME).
    #[arg(long)]
    pub username: Option<String>,
    /// "LAT,LONG".
    #[arg(long)]
    pub lat_long: Option<String>,
    /// The customer's public IP (IPv4 or IPv6).
    #[arg(long)]
    pub public_ip: Option<String>,
}

#[derive(Debug, Args)]
pub struct AOPayVerifyArgs {
    /// The send's reference (stateresp).
    #[arg(long)]
    pub reference: String,
    /// The remitter's number.
    #[arg(long)]
    pub mobile: String,
    #[command(flatten)]
    pub code: CodeArgs,
    /// The remitter's KycId, if any.
    #[arg(long)]
    pub kyc_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
