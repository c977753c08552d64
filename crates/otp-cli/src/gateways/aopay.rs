//! AOPay: DMTV1 "Transaction Send OTP", and RegisterRemitter, which consumes the OTP of a
//! code-0 answer (the remitter must register first).

use clap::Args;
use otp::verifier::Verification;
use otp::{aopay, Amount, ClientOptions, Coordinates, Error, GatewayClient, MobileNumber, OtpCode, Outcome};
use otp::{Pincode, SecretString, SendOtpRequest, SendReceipt, VerifyRequest};

use super::{Credentials, Flags, Profile};
use crate::args::CodeArgs;

#[derive(Debug)]
pub struct AOPay;

/// AOPay DMTV1 "Transaction Send OTP". Credentials: OTP_AOPAY_REGISTRATION_ID.
#[derive(Debug, Args)]
pub struct SendFlags {
    /// The beneficiary id.
    #[arg(long)]
    bene_id: String,
    /// imps or neft.
    #[arg(long)]
    txn_type: String,
    /// The amount.
    #[arg(long, allow_hyphen_values = true)]
    amount: String,
    /// The 6-digit pincode.
    #[arg(long)]
    pincode: String,
    /// The remitter's address.
    #[arg(long)]
    address: String,
    /// Date of birth, DD/MM/YYYY.
    #[arg(long)]
    dob: String,
    /// Latitude (decimal).
    #[arg(long, allow_hyphen_values = true)]
    latitude: String,
    /// Longitude (decimal).
    #[arg(long, allow_hyphen_values = true)]
    longitude: String,
    /// With --verify: the remitter's KycId for RegisterRemitter.
    #[arg(long)]
    kyc_id: Option<String>,
}

/// AOPay RegisterRemitter: --reference is the send's stateresp (a code-0 answer's).
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// The send's reference (stateresp).
    #[arg(long)]
    reference: String,
    /// The remitter's number.
    #[arg(long)]
    mobile: String,
    #[command(flatten)]
    code: CodeArgs,
    /// The remitter's KycId, if any.
    #[arg(long)]
    kyc_id: Option<String>,
}

impl Profile for AOPay {
    fn client(mut env: Credentials, _: Flags<'_, Self>, options: ClientOptions) -> Result<GatewayClient, Error> {
        let registration_id = env.var("OTP_AOPAY_REGISTRATION_ID");
        env.finish()?;
        Ok(aopay::AOPayClient::builder().registration_id(registration_id).options(options).build()?.into())
    }

    fn send_request(args: &SendFlags, mobile: MobileNumber) -> Result<SendOtpRequest, Error> {
        let remitter = aopay::Remitter::new(
            args.address.as_str(),
            Pincode::parse(&args.pincode)?,
            aopay::DateOfBirth::parse(&args.dob)?,
            Coordinates::new(&args.latitude, &args.longitude)?,
        )?;
        let amount = Amount::parse(&args.amount)?;
        let request =
            aopay::SendOtpRequest::new(mobile, args.bene_id.as_str(), args.txn_type.parse()?, amount, remitter)?;
        Ok(request.into())
    }

    fn standalone_verify(args: &VerifyFlags, code: OtpCode) -> Result<VerifyRequest, Error> {
        let mobile: MobileNumber = args.mobile.parse()?;
        let request = aopay::RegisterRemitterRequest::new(mobile, code, SecretString::new(args.reference.as_str()));
        Ok(match &args.kyc_id {
            Some(kyc_id) => request.kyc_id(kyc_id),
            None => request,
        }
        .into())
    }

    fn code(args: &VerifyFlags) -> &CodeArgs {
        &args.code
    }

    fn for_verify(args: &SendFlags, verification: Verification) -> Result<Verification, Error> {
        Ok(match &args.kyc_id {
            Some(kyc_id) => verification.kyc_id(kyc_id),
            None => verification,
        })
    }

    /// Kept hand-written although the umbrella's `SendOtpRequest::verify_request` refuses the
    /// same answer: it refuses only once it has the code, and the customer must not be asked
    /// for a code that nothing will check.
    fn verifiable(receipt: &SendReceipt) -> Result<(), Error> {
        if receipt.outcome == Outcome::SentForRegistration {
            return Ok(());
        }
        Err(Error::invalid_input(
            "AOPay answered code 1: a transaction OTP, consumed by AOPay's transfer call, not by \
             RegisterRemitter; nothing was verified",
        ))
    }
}
