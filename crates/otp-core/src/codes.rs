//! Provider code tables and the one rule that turns an answer into a result.
//!
//! Each gateway crate declares its documented codes in `spec/codes.toml`; `cargo xtask
//! codegen` turns that into a static [`CodeTable`]. [`CodeTable::resolve`] then applies the
//! unified rule of docs/gateways/README.md: a recognised code decides, whatever the HTTP status;
//! otherwise the HTTP status decides; a 2xx answer that is not the documented shape is an
//! unexpected response.

use std::error::Error as StdError;

use crate::http::RawResponse;
use crate::{Error, ErrorKind, Gateway, Outcome, ProviderResponse, SecretString, SendReceipt};

/// What a documented code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeResult {
    /// The OTP went out.
    Outcome(Outcome),
    /// The send failed with this kind.
    Error(ErrorKind),
}

impl CodeResult {
    /// The stable name: an outcome (`sent`, `sent_for_registration`) or an error kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeResult::Outcome(outcome) => outcome.as_str(),
            CodeResult::Error(kind) => kind.as_str(),
        }
    }

    /// The result with this stable name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sent" => Some(CodeResult::Outcome(Outcome::Sent)),
            "sent_for_registration" => Some(CodeResult::Outcome(Outcome::SentForRegistration)),
            "verified" => Some(CodeResult::Outcome(Outcome::Verified)),
            other => ErrorKind::from_name(other).map(CodeResult::Error),
        }
    }
}

/// One documented provider code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeEntry {
    /// The code as the provider sends it (numbers as their decimal text).
    pub code: &'static str,
    /// What it means.
    pub result: CodeResult,
    /// Whether sending again later may succeed (see [`Error::is_retryable`]).
    pub retryable: bool,
    /// The provider's documented message.
    pub message: &'static str,
}

/// A gateway's documented codes.
#[derive(Debug, Clone, Copy)]
pub struct CodeTable {
    gateway: Gateway,
    entries: &'static [CodeEntry],
}

/// The parts of a provider answer that decide the result, as a gateway crate decoded them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ProviderAnswer {
    /// The provider's code, as text.
    pub code: Option<String>,
    /// The provider's message.
    pub message: Option<String>,
    /// The reference for the verify step, when the answer (or the request) carries one.
    pub reference: Option<SecretString>,
}

impl ProviderAnswer {
    /// An answer with these parts.
    pub fn new(code: Option<String>, message: Option<String>, reference: Option<SecretString>) -> Self {
        Self { code, message, reference }
    }
}

/// Whether a success must carry a reference to be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceRule {
    /// A success without a reference is an unexpected response (PhonePe, Paytm, AOPay).
    Required,
    /// The reference may be absent (iServeU registration without an external reference).
    Optional,
}

impl CodeTable {
    /// A table of documented codes for a gateway.
    pub const fn new(gateway: Gateway, entries: &'static [CodeEntry]) -> Self {
        Self { gateway, entries }
    }

    /// The gateway the codes belong to.
    pub fn gateway(&self) -> Gateway {
        self.gateway
    }

    /// Every documented code.
    pub fn entries(&self) -> &'static [CodeEntry] {
        self.entries
    }

    /// The entry for a code, if documented.
    pub fn lookup(&self, code: &str) -> Option<&'static CodeEntry> {
        self.entries.iter().find(|entry| entry.code == code)
    }

    /// Turns a provider answer into the unified result.
    ///
    /// `decoded` is the gateway's reading of the body: its error (the body was not the
    /// documented shape) is kept as the source of an unexpected response.
    pub fn resolve<E>(
        &self,
        response: &RawResponse,
        decoded: Result<ProviderAnswer, E>,
        reference_rule: ReferenceRule,
    ) -> Result<SendReceipt, Error>
    where
        E: StdError + Send + Sync + 'static,
    {
        let status = response.status;
        let answer = match decoded {
            Ok(answer) => answer,
            Err(decode_error) => {
                let provider = self.provider_response(response, None, None, false);
                let error = match status_fallback(status) {
                    Some(kind) => Error::provider(
                        kind,
                        kind == ErrorKind::ProviderUnavailable,
                        provider,
                        format!("the provider answered HTTP {status} with a body that is not the documented shape"),
                    ),
                    None => Error::unexpected(format!(
                        "the provider answered HTTP {status} with a body that is not the documented shape"
                    ))
                    .with_provider_response(provider),
                };
                return Err(error.with_source(decode_error).with_gateway(self.gateway));
            }
        };

        let entry = answer.code.as_deref().and_then(|code| self.lookup(code));
        // Success first, without building the copy of the answer an error keeps.
        if let Some(entry) = entry {
            if let CodeResult::Outcome(outcome) = entry.result {
                if reference_rule == ReferenceRule::Optional || answer.reference.is_some() {
                    return Ok(SendReceipt {
                        gateway: self.gateway,
                        outcome,
                        reference: answer.reference,
                        provider_code: entry.code.to_owned(),
                        message: answer.message,
                        http_status: status,
                    });
                }
            }
        }
        let provider = self.provider_response(response, answer.code.clone(), answer.message.clone(), entry.is_some());
        let error = match (entry, status_fallback(status)) {
            (Some(entry), _) => match entry.result {
                // Only a success without the reference it requires gets here.
                CodeResult::Outcome(_) => Error::unexpected(
                    "the provider reported success without the reference (or credential) it documents",
                )
                .with_provider_response(provider),
                CodeResult::Error(kind) => {
                    Error::provider(kind, entry.retryable, provider, "the provider refused the OTP")
                }
            },
            (None, Some(kind)) => Error::provider(
                kind,
                kind == ErrorKind::ProviderUnavailable,
                provider,
                format!("the provider answered HTTP {status}"),
            ),
            (None, None) => match answer.code {
                Some(_) => Error::provider(
                    ErrorKind::Rejected,
                    false,
                    provider,
                    "the provider answered with an undocumented code",
                ),
                None => Error::unexpected(format!("the provider answered HTTP {status} without a code"))
                    .with_provider_response(provider),
            },
        };
        Err(error.with_gateway(self.gateway))
    }

    /// Turns a verify answer into the unified result: as [`CodeTable::resolve`], with the
    /// answer's `reference` read as the gateway's credential.
    pub fn resolve_verify<E>(
        &self,
        response: &RawResponse,
        decoded: Result<ProviderAnswer, E>,
        credential_rule: ReferenceRule,
    ) -> Result<crate::VerifyReceipt, Error>
    where
        E: StdError + Send + Sync + 'static,
    {
        let receipt = self.resolve(response, decoded, credential_rule)?;
        Ok(crate::VerifyReceipt {
            gateway: receipt.gateway,
            outcome: receipt.outcome,
            credential: receipt.reference,
            provider_code: receipt.provider_code,
            message: receipt.message,
            http_status: receipt.http_status,
        })
    }

    fn provider_response(
        &self,
        response: &RawResponse,
        code: Option<String>,
        message: Option<String>,
        code_recognised: bool,
    ) -> ProviderResponse {
        ProviderResponse {
            http_status: response.status,
            code,
            message,
            code_recognised,
            retry_after: response.retry_after(),
            // Shares a copy wiped when the error is dropped, like the answer it came from.
            body: response.shared_body(),
        }
    }
}

/// The kind an HTTP status alone decides, or `None` for a 2xx (the body must decide).
pub fn status_fallback(status: u16) -> Option<ErrorKind> {
    match status {
        200..=299 => None,
        400 => Some(ErrorKind::InvalidRequest),
        401 | 403 => Some(ErrorKind::Authentication),
        429 => Some(ErrorKind::RateLimited),
        500..=599 => Some(ErrorKind::ProviderUnavailable),
        _ => Some(ErrorKind::Rejected),
    }
}

/// A provider code or reference as text, whether it came as a JSON string or a number (`"0"`
/// and `0` alike): gateways document one and have been seen to send the other. Any other JSON
/// value (null, a boolean, an array, an object) or a missing field reads as no text. Read
/// straight from the answer, without an intermediate `serde_json::Value`.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Answer {
///     #[serde(default)]
///     code: otp_core::CodeText,
/// }
/// let read = |json: &str| serde_json::from_str::<Answer>(json).unwrap().code.into_text();
/// assert_eq!(read(r#"{"code":"0"}"#), Some("0".to_owned()));
/// assert_eq!(read(r#"{"code":0}"#), Some("0".to_owned()));
/// assert_eq!(read(r#"{"code":[1]}"#), None);
/// assert_eq!(read("{}"), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CodeText(Option<String>);

impl std::fmt::Debug for CodeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // It may hold a reference the verify step needs, which is secret like SecretString.
        match &self.0 {
            Some(_) => f.write_str("CodeText([redacted])"),
            None => f.write_str("CodeText(None)"),
        }
    }
}

impl CodeText {
    /// The text, if the value was a string or a number.
    pub fn into_text(self) -> Option<String> {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for CodeText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CodeTextVisitor)
    }
}

struct CodeTextVisitor;

impl<'de> serde::de::Visitor<'de> for CodeTextVisitor {
    type Value = CodeText;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a code as a string or a number")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<CodeText, E> {
        Ok(CodeText(Some(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<CodeText, E> {
        Ok(CodeText(Some(text)))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<CodeText, E> {
        Ok(CodeText(Some(number.to_string())))
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<CodeText, E> {
        Ok(CodeText(Some(number.to_string())))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<CodeText, E> {
        // As serde_json writes the number (`1.5`, `1e21`).
        Ok(CodeText(serde_json::Number::from_f64(number).map(|n| n.to_string())))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<CodeText, E> {
        Ok(CodeText(None))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<CodeText, E> {
        Ok(CodeText(None))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<CodeText, E> {
        Ok(CodeText(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<CodeText, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(CodeText(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CodeText, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(CodeText(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_text_reads_an_owned_string_too() {
        // serde_json::from_value hands strings over owned (visit_string, not visit_str).
        let text: CodeText = serde_json::from_value(serde_json::Value::String("BE1400001".into())).unwrap();
        assert_eq!(text.into_text().as_deref(), Some("BE1400001"));
    }

    #[test]
    fn a_table_lists_its_entries() {
        static ENTRIES: &[CodeEntry] =
            &[CodeEntry { code: "OK", result: CodeResult::Outcome(Outcome::Sent), retryable: false, message: "" }];
        let table = CodeTable::new(Gateway::Paytm, ENTRIES);
        assert_eq!(table.entries().len(), 1);
        assert_eq!(table.entries()[0].code, "OK");
        assert_eq!(table.gateway(), Gateway::Paytm);
    }

    #[test]
    fn code_text_debug_is_redacted() {
        let text: CodeText = serde_json::from_str(r#""123456789""#).unwrap();
        assert_eq!(format!("{text:?}"), "CodeText([redacted])");
        assert_eq!(format!("{:?}", CodeText::default()), "CodeText(None)");
    }

    /// What the code text of any JSON value is: the same as reading it through a `Value`.
    #[test]
    fn code_text_reads_every_json_value_as_a_value_would() {
        let by_value = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => None,
        };
        for json in [
            r#""BE1400001""#,
            r#""""#,
            "0",
            "1",
            "-7",
            "18446744073709551615",
            "1.5",
            "1e21",
            "-0.0",
            "true",
            "null",
            "[]",
            "[1,[2]]",
            "{}",
            r#"{"a":{"b":[1]}}"#,
            r#""\u00e9\n""#,
        ] {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            let text: CodeText = serde_json::from_str(json).unwrap();
            assert_eq!(text.into_text(), by_value(&value), "{json}");
        }
    }
    use crate::Reached;

    static ENTRIES: &[CodeEntry] = &[
        CodeEntry { code: "OK", result: CodeResult::Outcome(Outcome::Sent), retryable: false, message: "ok" },
        CodeEntry { code: "SLOW", result: CodeResult::Error(ErrorKind::RateLimited), retryable: true, message: "" },
        CodeEntry { code: "NO", result: CodeResult::Error(ErrorKind::Blocked), retryable: false, message: "" },
    ];
    static TABLE: CodeTable = CodeTable::new(Gateway::PhonePe, ENTRIES);

    fn response(status: u16) -> RawResponse {
        RawResponse::new(status, Default::default(), b"{}".to_vec().into())
    }

    fn answer(code: Option<&str>, reference: Option<&str>) -> Result<ProviderAnswer, std::io::Error> {
        Ok(ProviderAnswer::new(code.map(Into::into), Some("msg".into()), reference.map(SecretString::new)))
    }

    #[test]
    fn a_recognised_code_decides_whatever_the_status() {
        let receipt = TABLE.resolve(&response(500), answer(Some("OK"), Some("ref")), ReferenceRule::Required).unwrap();
        assert_eq!(receipt.outcome, Outcome::Sent);
        assert_eq!(receipt.reference.unwrap().expose_secret(), "ref");
        assert_eq!(receipt.http_status, 500);

        let error = TABLE.resolve(&response(200), answer(Some("NO"), None), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Blocked);
        assert!(!error.is_retryable());
        assert_eq!(error.reached_provider(), Reached::Yes);

        let error = TABLE.resolve(&response(503), answer(Some("SLOW"), None), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(error.is_retryable());
        assert!(error.provider_response().unwrap().code_recognised);
    }

    #[test]
    fn success_without_a_required_reference_is_unexpected() {
        let error = TABLE.resolve(&response(200), answer(Some("OK"), None), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
        let receipt = TABLE.resolve(&response(200), answer(Some("OK"), None), ReferenceRule::Optional).unwrap();
        assert!(receipt.reference.is_none());
    }

    #[test]
    fn unknown_codes_fall_back_to_the_status_or_rejected() {
        let cases = [
            (200, ErrorKind::Rejected, false),
            (400, ErrorKind::InvalidRequest, false),
            (401, ErrorKind::Authentication, false),
            (403, ErrorKind::Authentication, false),
            (404, ErrorKind::Rejected, false),
            (429, ErrorKind::RateLimited, false),
            (500, ErrorKind::ProviderUnavailable, true),
            (502, ErrorKind::ProviderUnavailable, true),
        ];
        for (status, kind, retryable) in cases {
            let error =
                TABLE.resolve(&response(status), answer(Some("WHAT"), None), ReferenceRule::Required).unwrap_err();
            assert_eq!((error.kind(), error.is_retryable()), (kind, retryable), "HTTP {status}");
            assert_eq!(error.provider_code(), Some("WHAT"), "code kept verbatim");
            assert!(!error.provider_response().unwrap().code_recognised);
        }
    }

    #[test]
    fn a_body_that_is_not_the_documented_shape() {
        let bad = || serde_json::from_str::<serde_json::Value>("<html>").map(|_| ProviderAnswer::default());
        let error = TABLE.resolve(&response(200), bad(), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
        assert!(error.source().is_some(), "the decode error is kept");
        let error = TABLE.resolve(&response(502), bad(), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ProviderUnavailable);
        assert!(error.is_retryable());
        assert_eq!(error.http_status(), Some(502));
        let error = TABLE.resolve(&response(200), answer(None, None), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedResponse);
        let error = TABLE.resolve(&response(400), answer(None, None), ReferenceRule::Required).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn result_names_round_trip() {
        for name in ["sent", "sent_for_registration", "rate_limited", "unexpected_response"] {
            assert_eq!(CodeResult::from_name(name).unwrap().as_str(), name);
        }
        assert_eq!(CodeResult::from_name("ok"), None);
    }
}
