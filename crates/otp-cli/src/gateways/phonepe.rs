//! PhonePe: "Trigger OTP" (wallet linking), X-VERIFY signed, and "Verify OTP and link".

use clap::{Args, ValueEnum};
use otp::{phonepe, ClientOptions, Error, GatewayClient, MobileNumber, OtpCode, SecretString};
use otp::{SendOtpRequest, VerifyRequest};

use super::{Credentials, Flags, Profile, Referenced};
use crate::args::{CodeArgs, SentCode};

#[derive(Debug)]
pub struct PhonePe;

/// PhonePe "Trigger OTP" (wallet linking), X-VERIFY signed.
/// Credentials: OTP_PHONEPE_MERCHANT_ID, OTP_PHONEPE_SALT_KEY, OTP_PHONEPE_SALT_INDEX.
#[derive(Debug, Args)]
pub struct SendFlags {
    /// The customer's email.
    #[arg(long)]
    email: Option<String>,
    /// The customer's short name.
    #[arg(long)]
    name: Option<String>,
    /// WALLET or CREDIT.
    #[arg(long, value_enum)]
    request_type: Option<RequestType>,
    /// The device id, sent as X-DEVICE-ID (at most 64 characters).
    #[arg(long)]
    device_id: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RequestType {
    Wallet,
    Credit,
}

/// PhonePe "Verify OTP and link": --reference is the send's otpToken.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    #[command(flatten)]
    sent: SentCode<PhonePe>,
    /// X-DEVICE-ID: the one the send carried.
    #[arg(long)]
    device_id: Option<String>,
}

impl Profile for PhonePe {
    fn client(mut env: Credentials, _: Flags<'_, Self>, options: ClientOptions) -> Result<GatewayClient, Error> {
        let merchant_id = env.var("OTP_PHONEPE_MERCHANT_ID");
        let salt_key = env.var("OTP_PHONEPE_SALT_KEY");
        let salt_index = env.var("OTP_PHONEPE_SALT_INDEX");
        env.finish()?;
        let salt_index = salt_index.trim().parse::<u32>().ok().filter(|i| *i > 0).ok_or_else(|| {
            Error::configuration("OTP_PHONEPE_SALT_INDEX must be a positive integer (the index of the salt key)")
        })?;
        let client = phonepe::PhonePeClient::builder()
            .merchant_id(merchant_id)
            .salt_key(salt_key)
            .salt_index(salt_index)
            .options(options)
            .build()?;
        Ok(client.into())
    }

    fn send_request(args: &SendFlags, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
        let mut request = phonepe::SendOtpRequest::new(mobile);
        if let Some(email) = &args.email {
            request = request.email(email);
        }
        if let Some(name) = &args.name {
            request = request.short_name(name);
        }
        if let Some(kind) = args.request_type {
            request = request.request_type(match kind {
                RequestType::Wallet => phonepe::RequestType::Wallet,
                RequestType::Credit => phonepe::RequestType::Credit,
            });
        }
        if let Some(device_id) = &args.device_id {
            request = request.device_id(device_id);
        }
        request.validate()?;
        Ok(request.into())
    }

    fn standalone_verify(args: &VerifyFlags, code: OtpCode) -> Result<VerifyRequest, Error> {
        let request = phonepe::VerifyOtpRequest::new(SecretString::new(args.sent.reference.as_str()), code);
        let request = match &args.device_id {
            Some(device_id) => request.device_id(device_id),
            None => request,
        };
        request.validate()?;
        Ok(request.into())
    }

    fn code(args: &VerifyFlags) -> &CodeArgs {
        &args.sent.code
    }
}

impl Referenced for PhonePe {
    const REFERENCE: &'static str = "otpToken";
}
