//! # otp — the command line of otp-rs
//!
//! ```text
//! otp send <phonepe|paytm|iserveu|aopay> --mobile <NUMBER> [gateway flags] [--json] [--sandbox] [--verify]
//! otp verify <phonepe|paytm|iserveu|aopay> --reference <REF> --otp <CODE|-> [verify flags]
//! otp sandbox [--addr 127.0.0.1:8080]
//! otp serve --sandbox | --config FILE [--addr HOST:PORT] [--log-format json]
//! otp serve hash-key [--name NAME] [--tenant TENANT]
//! ```
//!
//! The contract (flags, credential variables, JSON fields, exit codes) is stable for scripts:
//! exit 0 sent (or verified), 2 nothing sent (usage, invalid input, missing configuration), 3 the provider
//! refused, 4 no usable answer, 1 anything else. Logs go to stderr when `RUST_LOG` asks for them
//! and never carry a secret, an identity number or a full mobile number.
#![forbid(unsafe_code)]

mod args;
mod gateways;
mod output;
mod send;
mod serve;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};
use crate::output::Failure;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return output::usage_error(error),
    };
    init_logs();
    // One thread is plenty for one send; `otp sandbox` serves many clients on every core.
    let runtime = match &cli.command {
        Command::Sandbox(_) | Command::Serve(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            let failure = Failure::Internal(format!("could not start the async runtime: {error}"));
            return output::failure(None, &failure, false);
        }
    };
    match cli.command {
        Command::Send(command) => runtime.block_on(command.gateway.run()),
        Command::Verify(command) => runtime.block_on(command.gateway.run()),
        Command::Sandbox(command) => runtime.block_on(send::serve_sandbox(command)),
        Command::Serve(command) => runtime.block_on(serve::run(command)),
    }
}

/// Logs only when `RUST_LOG` asks (tracing's filter syntax), always to stderr so stdout stays
/// the one JSON object scripts parse.
fn init_logs() {
    // `otp serve` installs its own request-line logging.
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return;
    }
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
