//! One profile per gateway, each in its own file: its `otp send` and `otp verify` flags (their
//! doc comments are the subcommands' summaries), the environment variables its client reads,
//! and how it builds that client, its send request and its standalone verify request. The
//! registry at the bottom lists them, one line each; the subcommands of `otp send` and
//! `otp verify` and their dispatch are generated from it.
//!
//! How `--verify` derives the verify request from the send is deliberately not here: that is
//! the umbrella's `SendOtpRequest::verify_request` (the one definition, which sessions use
//! too); `send.rs` calls it with what a profile adds in [`Profile::for_verify`].

mod aopay;
mod iserveu;
mod paytm;
mod phonepe;

use std::process::ExitCode;

use otp::verifier::Verification;
use otp::VerifyRequest;
use otp::{ClientOptions, Error, Gateway, GatewayClient, MobileNumber, OtpCode, SendOtpRequest, SendReceipt};
use otp_core::RequiredSettings;

use crate::args::{CodeArgs, SendArgs};
use crate::send;

/// What a gateway's registry line gives its profile, by the names every gateway file uses:
/// its `otp::Gateway` variant and its `SendFlags` and `VerifyFlags`.
pub trait Registered: Sized {
    const GATEWAY: Gateway;
    /// `otp send <gateway>`'s own flags (after the shared ones).
    type Send: clap::Args + std::fmt::Debug;
    /// `otp verify <gateway>`'s flags, the shared [`CodeArgs`] among them where the gateway
    /// lists them.
    type Verify: clap::Args + std::fmt::Debug;
}

/// A gateway as the command line sees it: what each gateway file implements.
pub trait Profile: Registered {
    /// The client, from the credential variables; `flags` may stand in for one.
    fn client(env: Credentials, flags: Flags<'_, Self>, options: ClientOptions) -> Result<GatewayClient, Error>;

    /// The send request, checked: nothing is sent when it is refused.
    fn send_request(args: &Self::Send, mobile: MobileNumber) -> Result<SendOtpRequest, Error>;

    /// `otp verify <gateway>`'s request, from its flags and the code (`--verify`'s comes from
    /// the send instead, through the umbrella's `SendOtpRequest::verify_request`).
    fn standalone_verify(args: &Self::Verify, code: OtpCode) -> Result<VerifyRequest, Error>;

    /// `otp verify <gateway>`'s code and connection flags.
    fn code(args: &Self::Verify) -> &CodeArgs;

    /// With `--verify`, before anything is sent: what the verify call needs that the send
    /// request does not carry, or a refusal when this OTP has no verify call.
    fn for_verify(args: &Self::Send, verification: Verification) -> Result<Verification, Error> {
        let _ = args;
        Ok(verification)
    }

    /// With `--verify`, after the send: a refusal, before the customer is asked for a code,
    /// when this answer's OTP has no verify call.
    fn verifiable(receipt: &SendReceipt) -> Result<(), Error> {
        let _ = receipt;
        Ok(())
    }
}

/// A gateway whose verify call takes the send's reference: `--reference`'s help names the
/// gateway's own field for it.
pub trait Referenced {
    const REFERENCE: &'static str;
}

/// The command a client is built for, whose flags may stand in for a credential variable.
pub enum Flags<'a, P: Profile> {
    Send(&'a P::Send),
    Verify(&'a P::Verify),
}

/// The credential variables a client reads. otp-core's `RequiredSettings` collects what is
/// missing (absent or blank), so that one error names every variable.
pub struct Credentials {
    gateway: Gateway,
    lookup: fn(&str) -> Option<String>,
    required: RequiredSettings,
}

impl Credentials {
    /// From the process environment.
    pub fn from_env(gateway: Gateway) -> Self {
        Self::with_lookup(gateway, |name| std::env::var(name).ok())
    }

    fn with_lookup(gateway: Gateway, lookup: fn(&str) -> Option<String>) -> Self {
        Self { gateway, lookup, required: RequiredSettings::new() }
    }

    /// A required variable.
    pub fn var(&mut self, name: &'static str) -> String {
        self.required.text(name, (self.lookup)(name))
    }

    /// A variable that `flag` stands in for when given; named as `shown` when both are missing.
    pub fn var_or_flag(&mut self, flag: Option<&String>, name: &'static str, shown: &'static str) -> String {
        match flag {
            Some(value) => value.clone(),
            None => self.required.text(shown, (self.lookup)(name)),
        }
    }

    /// A configuration error naming every missing variable, if any is.
    pub fn finish(self) -> Result<(), Error> {
        let gateway = self.gateway;
        let Err(error) = self.required.finish(gateway) else { return Ok(()) };
        // Kept hand-written: the CLI's documented sentence, which says what to set and offers --sandbox.
        // RequiredSettings words its own for a builder and hands out no list, so the names are
        // read back from it (`missing_variables_are_named_in_cli_md_s_words` pins the result).
        let prefix = format!("{gateway} client is missing: ");
        let names = error.description().strip_prefix(prefix.as_str()).unwrap_or(error.description());
        Err(Error::configuration(format!(
            "missing credentials for {gateway}: set {names}; or pass --sandbox to send to the embedded sandbox"
        )))
    }
}

/// A gateway's summary in `--help`: the doc comment of its flags struct, which clap makes
/// that struct's `about`. Set on the subcommand explicitly so that the shared flags' docs,
/// flattened around it, cannot take its place.
fn about<A: clap::Args>() -> clap::builder::StyledStr {
    A::augment_args(clap::Command::new("")).get_about().cloned().unwrap_or_default()
}

/// The subcommands and their dispatch, and each profile's [`Registered`], from one line per
/// gateway: `Variant => module`, where `otp::Gateway::Variant` is served by `module::Variant`
/// with the flags `module::SendFlags` and `module::VerifyFlags`.
macro_rules! registry {
    ($($variant:ident => $module:ident,)*) => {
        $(
            impl Registered for $module::$variant {
                const GATEWAY: Gateway = Gateway::$variant;
                type Send = $module::SendFlags;
                type Verify = $module::VerifyFlags;
            }
        )*

        /// `otp send <gateway>`.
        #[derive(Debug, clap::Subcommand)]
        pub enum SendGateway {
            $(
                #[command(name = Gateway::$variant.as_str(), about = about::<$module::SendFlags>())]
                $variant(SendArgs<$module::SendFlags>),
            )*
        }

        /// `otp verify <gateway>`.
        #[derive(Debug, clap::Subcommand)]
        pub enum VerifyGateway {
            $(
                #[command(name = Gateway::$variant.as_str(), about = about::<$module::VerifyFlags>())]
                $variant($module::VerifyFlags),
            )*
        }

        impl SendGateway {
            pub async fn run(self) -> ExitCode {
                match self {
                    $(SendGateway::$variant(args) => send::run::<$module::$variant>(args).await,)*
                }
            }
        }

        impl VerifyGateway {
            pub async fn run(self) -> ExitCode {
                match self {
                    $(VerifyGateway::$variant(args) => send::verify::<$module::$variant>(args).await,)*
                }
            }
        }
    };
}

registry! {
    PhonePe => phonepe,
    Paytm => paytm,
    IServeU => iserveu,
    AOPay => aopay,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_gateway_has_a_send_and_a_verify_subcommand_with_its_own_summary() {
        let cli = crate::args::Cli::command();
        for command in ["send", "verify"] {
            let command = cli.find_subcommand(command).unwrap();
            let names: Vec<&str> = command.get_subcommands().map(clap::Command::get_name).collect();
            assert_eq!(names, Gateway::ALL.map(Gateway::as_str), "otp {}", command.get_name());
            for subcommand in command.get_subcommands() {
                // Each summary starts with the gateway's name, not a shared struct's doc.
                let about = subcommand.get_about().unwrap().to_string().to_lowercase();
                let name = subcommand.get_name();
                assert!(about.starts_with(name), "otp {} {name}: {about}", command.get_name());
            }
        }
    }

    #[test]
    fn missing_variables_are_named_in_cli_md_s_words() {
        let mut env = Credentials::with_lookup(Gateway::IServeU, |name| (name == "SET").then(|| "value".to_owned()));
        assert_eq!(env.var("SET"), "value");
        assert_eq!(env.var("A"), "");
        assert_eq!(env.var_or_flag(Some(&"flag".to_owned()), "B", "B (or --b)"), "flag");
        assert_eq!(env.var_or_flag(None, "C", "C (or --c)"), "");
        let error = env.finish().unwrap_err();
        assert!(error.is_configuration());
        assert_eq!(
            error.description(),
            "missing credentials for iserveu: set A, C (or --c); or pass --sandbox to send to the embedded sandbox"
        );
        let mut blank = Credentials::with_lookup(Gateway::Paytm, |_| Some("  ".to_owned()));
        blank.var("BLANK");
        assert!(blank.finish().unwrap_err().description().contains("set BLANK;"), "blank counts as missing");
        assert!(Credentials::with_lookup(Gateway::Paytm, |_| None).finish().is_ok(), "nothing asked, nothing missing");
    }
}
