//! The command line (README's CLI section): the commands and the flags every gateway shares;
//! each gateway's own flags are in its file under `gateways/`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::gateways::{Referenced, SendGateway, VerifyGateway};

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
    /// Serve verifications over HTTP (docs/serve.md) until interrupted.
    Serve(ServeCommand),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeCommand {
    /// Zero configuration: the embedded sandbox as every gateway, the memory store, loopback
    /// only, and a development API key printed at start.
    #[arg(long, conflicts_with = "config")]
    pub sandbox: bool,
    /// The service's TOML configuration (docs/serve.md).
    #[arg(long, value_name = "FILE", required_unless_present = "sandbox")]
    pub config: Option<std::path::PathBuf>,
    /// Listen here instead of the configured address.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// How log lines are written to stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormatArg,
    #[command(subcommand)]
    pub action: Option<ServeAction>,
}

#[derive(Debug, Subcommand)]
pub enum ServeAction {
    /// Print a new random API key and the config lines holding its SHA-256.
    HashKey {
        /// The key's name in the config.
        #[arg(long, default_value = "backend")]
        name: String,
        /// The tenant its verifications belong to.
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct SendCommand {
    #[command(subcommand)]
    pub gateway: SendGateway,
}

#[derive(Debug, Args)]
pub struct VerifyCommand {
    #[command(subcommand)]
    pub gateway: VerifyGateway,
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
    #[arg(long, default_value_t = otp::Gateway::PhonePe.otp_validity().as_secs(), value_name = "SECS")]
    pub otp_validity: u64,
    /// How long an AOPay OTP stays valid, in seconds.
    #[arg(long, default_value_t = otp::Gateway::AOPay.otp_validity().as_secs(), value_name = "SECS")]
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

/// `otp send <gateway>`: the flags every gateway's send takes, then that gateway's own.
#[derive(Debug, Args)]
pub struct SendArgs<G: Args> {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub gateway: G,
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

/// The send's reference, then the code: how the verify flags of a gateway whose verify call
/// takes the reference begin (`--reference`'s help names the gateway's field for it).
#[derive(Debug, Args)]
pub struct SentCode<G: Referenced> {
    #[arg(long, help = format!("The send's reference ({})", G::REFERENCE))]
    pub reference: String,
    #[command(flatten)]
    pub code: CodeArgs,
    #[arg(skip)]
    gateway: std::marker::PhantomData<G>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
