//! Paytm: "Send OTP" and "Validate OTP", Basic-authenticated, both with a `locale`.

use clap::Args;
use otp::{paytm, ClientOptions, Error, GatewayClient, MobileNumber, OtpCode, SecretString};
use otp::{SendOtpRequest, VerifyRequest};

use super::{Credentials, Flags, Profile, Referenced};
use crate::args::{CodeArgs, SentCode};

#[derive(Debug)]
pub struct Paytm;

/// Paytm "Send OTP". Credentials: OTP_PAYTM_CLIENT_ID, OTP_PAYTM_CLIENT_SECRET.
#[derive(Debug, Args)]
pub struct SendFlags {
    /// The device identifier (x-device-identifier).
    #[arg(long)]
    device_id: String,
    /// A scope to ask for; repeat for more.
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    scopes: Vec<String>,
    /// The app's SMS auto-read hash.
    #[arg(long)]
    auto_read_hash: Option<String>,
    /// The locale query parameter.
    #[arg(long, default_value = paytm::DEFAULT_LOCALE)]
    locale: String,
}

/// Paytm "Validate OTP": --reference is the send's state_token.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    #[command(flatten)]
    sent: SentCode<Paytm>,
    /// The device identifier the send used.
    #[arg(long)]
    device_id: String,
    /// The locale query parameter (the one the send used).
    #[arg(long, default_value = paytm::DEFAULT_LOCALE)]
    locale: String,
}

impl Profile for Paytm {
    fn client(mut env: Credentials, _: Flags<'_, Self>, options: ClientOptions) -> Result<GatewayClient, Error> {
        let client_id = env.var("OTP_PAYTM_CLIENT_ID");
        let client_secret = env.var("OTP_PAYTM_CLIENT_SECRET");
        env.finish()?;
        let client = paytm::PaytmClient::builder().client_id(client_id).client_secret(client_secret);
        Ok(client.options(options).build()?.into())
    }

    fn send_request(args: &SendFlags, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
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

    fn standalone_verify(args: &VerifyFlags, code: OtpCode) -> Result<VerifyRequest, Error> {
        let reference = SecretString::new(args.sent.reference.as_str());
        Ok(paytm::VerifyOtpRequest::new(reference, code, &args.device_id)?.locale(&args.locale).into())
    }

    fn code(args: &VerifyFlags) -> &CodeArgs {
        &args.sent.code
    }
}

impl Referenced for Paytm {
    const REFERENCE: &'static str = "state_token";
}
