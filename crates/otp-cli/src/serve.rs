//! `otp serve`: the verification service (otp-serve) from the command line.

use std::io::Write as _;
use std::process::ExitCode;

use otp_serve::{LogFormat, NewApiKey, Scope, ServeConfig};

use crate::args::{LogFormatArg, ServeAction, ServeCommand};
use crate::output::{self, Failure};

/// Runs `otp serve`: prints `listening: …` (and, with `--sandbox`, `api_key: …`, `sandbox: …`
/// and `inbox: …`), each on a line of its own for scripts to read, then serves until Ctrl-C or
/// SIGTERM, letting requests in flight finish.
pub async fn run(command: ServeCommand) -> ExitCode {
    if let Some(ServeAction::HashKey { name, tenant }) = &command.action {
        return hash_key(name, tenant);
    }
    otp_serve::init_logging(match command.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    });
    // Each connection is a file descriptor, and the service holds up to twice its connection
    // cap (as many served, as many again given a second to speak): 2,048 by default, past the
    // soft limit of 1,024 a service manager or shell commonly gives. Beyond the limit accept
    // fails, and new connections, health checks too, wait in the backlog until idle ones time
    // out. Take what the hard limit allows, as `otp sandbox` does.
    #[cfg(unix)]
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(%error, "could not raise the open-file limit");
    }
    let config = match (&command.config, command.sandbox) {
        (Some(path), _) => ServeConfig::from_file(path),
        (None, _) => ServeConfig::sandbox(),
    };
    let config = match config {
        Ok(config) => config,
        // A config error names its key and exits 2, before anything listens.
        Err(error) => return output::failure(None, &Failure::Otp(otp::Error::configuration(error.to_string())), false),
    };
    let config = match command.addr {
        Some(addr) => config.listen(addr),
        None => config,
    };
    let announce = |line: &str| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    };
    match otp_serve::run(config, announce, otp_serve::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::failure(None, &Failure::Internal(error.to_string()), false),
    }
}

/// `otp serve hash-key`: a new key (shown once) and the config lines that admit it.
fn hash_key(name: &str, tenant: &str) -> ExitCode {
    let key = match NewApiKey::generate() {
        Ok(key) => key,
        Err(error) => return output::failure(None, &Failure::Otp(error), false),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "api_key: {}", key.key.expose_secret());
    let _ = writeln!(stdout, "# the key above is shown once; the config keeps only its SHA-256:");
    let _ = write!(stdout, "{}", key.config_lines(name, tenant, &Scope::ALL));
    ExitCode::SUCCESS
}
