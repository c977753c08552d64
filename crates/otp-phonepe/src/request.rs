//! What a caller asks PhonePe to do.

use otp_core::operation::Request;
use otp_core::{validate, Error, MobileNumber, OtpCode, SecretString};

/// PhonePe's `requestType`: which linking the OTP is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RequestType {
    /// Direct debit (`WALLET`).
    Wallet,
    /// M2C / instant payout (`CREDIT`).
    Credit,
}

impl RequestType {
    /// The value on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestType::Wallet => "WALLET",
            RequestType::Credit => "CREDIT",
        }
    }
}

/// The longest `X-DEVICE-ID` PhonePe accepts.
pub const MAX_DEVICE_ID_CHARS: usize = 64;

/// A "Trigger OTP" request. `Debug` masks the number and hides the email and name.
///
/// With feature `serde` it is read back only through its checks: a stored request cannot come
/// back as one PhonePe would refuse.
#[derive(Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "SendOtpRequestWire"))]
pub struct SendOtpRequest {
    pub(crate) mobile: MobileNumber,
    pub(crate) email: Option<String>,
    pub(crate) short_name: Option<String>,
    pub(crate) request_type: Option<RequestType>,
    pub(crate) device_id: Option<String>,
}

impl std::fmt::Debug for SendOtpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |present: bool| if present { "[redacted]" } else { "none" };
        f.debug_struct("SendOtpRequest")
            .field("mobile", &self.mobile)
            .field("email", &hidden(self.email.is_some()))
            .field("short_name", &hidden(self.short_name.is_some()))
            .field("request_type", &self.request_type)
            .field("device_id", &self.device_id)
            .finish()
    }
}

impl SendOtpRequest {
    /// An OTP to this number.
    pub fn new(mobile: MobileNumber) -> Self {
        Self { mobile, email: None, short_name: None, request_type: None, device_id: None }
    }

    /// The customer's email (`email`).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The customer's name (`shortName`).
    pub fn short_name(mut self, name: impl Into<String>) -> Self {
        self.short_name = Some(name.into());
        self
    }

    /// The linking type (`requestType`).
    pub fn request_type(mut self, request_type: RequestType) -> Self {
        self.request_type = Some(request_type);
        self
    }

    /// The device id, sent as `X-DEVICE-ID` (at most 64 characters).
    pub fn device_id(mut self, device_id: impl Into<String>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }

    /// The number the OTP goes to.
    pub fn mobile(&self) -> &MobileNumber {
        &self.mobile
    }

    /// The `X-DEVICE-ID` it sends, which the verify must repeat.
    pub fn device_id_header(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// Checks every field; nothing is sent when this fails ([`Request::validate`], for callers
    /// without the trait in scope).
    pub fn validate(&self) -> Result<(), Error> {
        Request::validate(self)
    }
}

impl Request for SendOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(&self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        if let Some(email) = &self.email {
            validate::text("email", email, 254)?;
            let well_formed = match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains('@')
                        && !email.contains(char::is_whitespace)
                }
                None => false,
            };
            if !well_formed {
                return Err(Error::invalid_input("email is not a valid address"));
            }
        }
        if let Some(name) = &self.short_name {
            validate::text("short name", name, 100)?;
        }
        check_device_id(self.device_id.as_deref())
    }
}

/// `X-DEVICE-ID`, which a verify repeats: one check for both.
fn check_device_id(device_id: Option<&str>) -> Result<(), Error> {
    match device_id {
        Some(device_id) => validate::header_text("device id", device_id, MAX_DEVICE_ID_CHARS),
        None => Ok(()),
    }
}

/// What a stored request is read as before its checks let it through.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct SendOtpRequestWire {
    mobile: MobileNumber,
    email: Option<String>,
    short_name: Option<String>,
    request_type: Option<RequestType>,
    device_id: Option<String>,
}

#[cfg(feature = "serde")]
impl TryFrom<SendOtpRequestWire> for SendOtpRequest {
    type Error = Error;

    fn try_from(wire: SendOtpRequestWire) -> Result<Self, Error> {
        let mut request = SendOtpRequest::new(wire.mobile);
        request.email = wire.email;
        request.short_name = wire.short_name;
        request.request_type = wire.request_type;
        request.device_id = wire.device_id;
        Request::validate(&request)?;
        Ok(request)
    }
}

/// A "Verify OTP and link" request: the latest send's `otpToken` (its receipt's reference)
/// and the code the customer typed.
#[derive(Debug, Clone)]
pub struct VerifyOtpRequest {
    pub(crate) otp_token: SecretString,
    pub(crate) otp: OtpCode,
    pub(crate) device_id: Option<String>,
}

impl VerifyOtpRequest {
    /// `otpToken` (the send's reference) and `otp`.
    pub fn new(otp_token: SecretString, otp: OtpCode) -> Self {
        Self { otp_token, otp, device_id: None }
    }

    /// `X-DEVICE-ID`: the same one the send carried, if it carried one.
    pub fn device_id(mut self, device_id: impl Into<String>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }

    /// Checks the token and device id; nothing is sent when this fails ([`Request::validate`],
    /// for callers without the trait in scope).
    pub fn validate(&self) -> Result<(), Error> {
        Request::validate(self)
    }
}

impl Request for VerifyOtpRequest {
    fn mobile(&self) -> Option<&MobileNumber> {
        None
    }

    fn validate(&self) -> Result<(), Error> {
        validate::header_text("otp token", self.otp_token.expose_secret(), 128).map_err(|_| {
            Error::invalid_input("the otp token must be the send's reference: visible ASCII, at most 128")
        })?;
        check_device_id(self.device_id.as_deref())
    }
}
