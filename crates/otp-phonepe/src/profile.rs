//! What PhonePe is, for the umbrella, the verifier and the CLI (otp-core's `GatewayProfile`).

use otp_core::profile::{self, GatewayProfile, Setting, VerifyExtras};
use otp_core::{ClientOptions, Error, Gateway, MobileNumber, OtpCode, Outcome, SecretString};

use crate::{PhonePeClient, SendOtpRequest, VerifyOtpRequest};

impl GatewayProfile for PhonePeClient {
    const GATEWAY: Gateway = Gateway::PhonePe;
    const SETTINGS: &'static [Setting] =
        &[Setting::required("merchant_id"), Setting::secret("salt_key"), Setting::required("salt_index")];
    type SendRequest = SendOtpRequest;
    type VerifyRequest = VerifyOtpRequest;

    fn from_settings(
        settings: &mut dyn FnMut(&'static str) -> Option<String>,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let mut builder = PhonePeClient::builder().options(options);
        if let Some(merchant_id) = settings("merchant_id") {
            builder = builder.merchant_id(merchant_id);
        }
        if let Some(salt_key) = settings("salt_key") {
            builder = builder.salt_key(salt_key);
        }
        if let Some(salt_index) = settings("salt_index") {
            let salt_index = salt_index.trim().parse::<u32>().map_err(|_| {
                Error::configuration("the PhonePe salt index must be a positive integer (the index of the salt key)")
                    .with_gateway(Gateway::PhonePe)
            })?;
            builder = builder.salt_index(salt_index);
        }
        builder.build()
    }

    fn mobile(request: &SendOtpRequest) -> &MobileNumber {
        request.mobile()
    }

    /// The verify takes the send's `X-DEVICE-ID`, checked with the send.
    fn validate_verify(_request: &SendOtpRequest, _extras: &VerifyExtras) -> Result<(), Error> {
        Ok(())
    }

    /// "Verify OTP and link": the latest send's `otpToken` and the same `X-DEVICE-ID`.
    fn verify_request(
        request: &SendOtpRequest,
        reference: Option<&SecretString>,
        _outcome: Outcome,
        code: OtpCode,
        _extras: &VerifyExtras,
    ) -> Result<VerifyOtpRequest, Error> {
        let verify = VerifyOtpRequest::new(profile::reference(reference)?, code);
        Ok(match request.device_id_header() {
            Some(device_id) => verify.device_id(device_id),
            None => verify,
        })
    }

    /// A resend is the same request: PhonePe issues a new `otpToken`.
    fn check_resend(_request: &SendOtpRequest) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    #[test]
    fn the_profile_asks_for_its_settings_and_builds_from_them() {
        otp_core::test_util::check_settings::<PhonePeClient>();
        let values = |name: &str| match name {
            "merchant_id" => Some("M1".to_owned()),
            "salt_key" => Some("k".to_owned()),
            _ => Some("x".to_owned()),
        };
        let error = PhonePeClient::from_settings(&mut |name| values(name), ClientOptions::new()).unwrap_err();
        assert!(error.is_configuration() && error.to_string().contains("salt index"), "{error}");
        let given = |name: &str| if name == "salt_index" { Some(" 2 ".to_owned()) } else { values(name) };
        PhonePeClient::from_settings(&mut |name| given(name), ClientOptions::new()).unwrap();
    }

    #[test]
    fn the_verify_repeats_the_token_and_the_device_id() {
        let send = SendOtpRequest::new("9876543210".parse().unwrap()).device_id("device-9");
        let code = || OtpCode::parse("123456").unwrap();
        let token = SecretString::new("OTP-TOKEN-1");
        let extras = VerifyExtras::new();
        let verify = PhonePeClient::verify_request(&send, Some(&token), Outcome::Sent, code(), &extras).unwrap();
        assert_eq!((verify.otp_token.expose_secret(), verify.device_id.as_deref()), ("OTP-TOKEN-1", Some("device-9")));
        let error = PhonePeClient::verify_request(&send, None, Outcome::Sent, code(), &extras).unwrap_err();
        assert_eq!(error.kind(), otp_core::ErrorKind::InvalidRequest);
        PhonePeClient::check_resend(&send).unwrap();
    }
}
