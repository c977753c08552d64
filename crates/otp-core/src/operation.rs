//! The seam every gateway operation goes through.
//!
//! A gateway crate describes each call it offers — how to write the wire request from a typed
//! request, and how to read the answer — by implementing [`Operation`] for its client, once
//! per request type (and [`Client`] once per client, [`Request`] once per request type: its
//! number and its checks). [`execute`] does everything else, the same way for every operation
//! of every gateway: the request checked first ([`Request::validate`]), errors tagged with the
//! gateway, one tracing span with the masked number, the deadline, the in-flight limit and its
//! queue, the answer cap, redirects refused, retries only where the operation allows them and
//! the policy says nothing can have gone out.
//!
//! ```
//! use otp_core::operation::{execute, Client, Operation, OperationKind, Request};
//! use otp_core::http::{RawResponse, Transport, WireRequest};
//! use otp_core::{BaseUrl, Error, Gateway, HttpOptions, MobileNumber, SendReceipt};
//!
//! struct ExampleClient { transport: Transport }
//! struct Send { mobile: MobileNumber }
//!
//! impl Client for ExampleClient {
//!     fn transport(&self) -> &Transport { &self.transport }
//! }
//!
//! impl Request for Send {
//!     fn mobile(&self) -> Option<&MobileNumber> { Some(&self.mobile) }
//!     // A number is valid by construction: nothing else to check.
//!     fn validate(&self) -> Result<(), Error> { Ok(()) }
//! }
//!
//! impl Operation<Send> for ExampleClient {
//!     type Output = SendReceipt;
//!     const KIND: OperationKind = OperationKind::Send;
//!     fn wire_request(&self, request: &Send) -> Result<WireRequest, Error> {
//!         let body = otp_core::operation::json_body(&[("phone", request.mobile.expose_digits())]);
//!         Ok(WireRequest::post_json("/send", body))
//!     }
//!     fn decode(&self, _: &Send, response: &RawResponse) -> Result<SendReceipt, Error> {
//!         Err(Error::unexpected(format!("HTTP {}", response.status)))
//!     }
//! }
//!
//! impl ExampleClient {
//!     async fn send_otp(&self, request: &Send) -> Result<SendReceipt, Error> {
//!         execute(self, request).await
//!     }
//! }
//! # let base = BaseUrl::parse("https://example.com", false)?;
//! # let client = ExampleClient { transport: Transport::new(Gateway::Paytm, base, &HttpOptions::default())? };
//! # let _ = client.send_otp(&Send { mobile: "9876543210".parse()? });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use tokio::time::Instant;
use tracing::{field, Instrument};
use zeroize::Zeroizing;

use crate::http::{RawResponse, Transport, WireRequest};
use crate::{Error, MobileNumber, SendReceipt, VerifyReceipt};

/// Which operation a call is, for its span's name (span names must be static, so the set is
/// closed and grows with the operations the gateways offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationKind {
    /// Sends an OTP: span `otp.send`.
    Send,
    /// Verifies a code (or completes the registration that consumes it): span `otp.verify`.
    Verify,
}

impl OperationKind {
    /// The stable name (`send`).
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationKind::Send => "send",
            OperationKind::Verify => "verify",
        }
    }
}

/// What a successful operation reports in its log line.
pub trait Answered {
    /// The outcome's stable name (`sent`, …).
    fn outcome(&self) -> &'static str;
    /// The provider's code, verbatim.
    fn provider_code(&self) -> &str;
    /// The HTTP status of the answer.
    fn http_status(&self) -> u16;
}

/// Both receipts report the same three things.
macro_rules! answered {
    ($($receipt:ty),*) => {$(
        impl Answered for $receipt {
            fn outcome(&self) -> &'static str {
                self.outcome.as_str()
            }

            fn provider_code(&self) -> &str {
                &self.provider_code
            }

            fn http_status(&self) -> u16 {
                self.http_status
            }
        }
    )*};
}

answered!(SendReceipt, VerifyReceipt);

/// A gateway client: what it sends through. Implemented once per client.
pub trait Client {
    /// The transport this client sends through.
    fn transport(&self) -> &Transport;
}

/// A typed request of some operation. Implemented once per request type.
pub trait Request {
    /// The mobile number the request is about, shown masked in the operation's span.
    fn mobile(&self) -> Option<&MobileNumber>;

    /// Checks everything about the request that its gateway would refuse (free-text fields'
    /// lengths and characters, combinations), without sending: `invalid_request` with
    /// [`Reached::No`](crate::Reached::No) when it fails. The one definition of the request's
    /// checks: [`execute`] calls it before [`Operation::wire_request`], a verification calls it
    /// before its send guard counts anything, and a deserialised request (feature `serde`)
    /// comes back only through it. What the request cannot know (the client's settings, a
    /// header value HTTP cannot carry) stays with `wire_request`.
    ///
    /// Required, with no default: every new request type says how it is checked.
    fn validate(&self) -> Result<(), Error>;
}

/// One call a gateway offers for requests of type `R`, implemented by its client.
pub trait Operation<R: Request>: Client {
    /// What a success yields.
    type Output: Answered;
    /// Which operation this is.
    const KIND: OperationKind;
    /// Whether the client's [`RetryPolicy`](crate::RetryPolicy) may retry it. A send retries only
    /// what cannot have reached the provider; a verify consumes a try and is never retried.
    const RETRIES: bool = true;

    /// Writes the request as the gateway expects. [`execute`] has checked it
    /// ([`Request::validate`]) first; what fails here is what only the client can know (a
    /// setting missing, a value HTTP cannot carry). Runs before anything touches the network;
    /// an error here sends nothing.
    fn wire_request(&self, request: &R) -> Result<WireRequest, Error>;

    /// Reads the gateway's answer (usually through the gateway's [`CodeTable`](crate::CodeTable)).
    fn decode(&self, request: &R, response: &RawResponse) -> Result<Self::Output, Error>;
}

/// Runs one operation: the one path from a typed request to a typed result.
pub async fn execute<R, O>(operation: &O, request: &R) -> Result<O::Output, Error>
where
    R: Request,
    O: Operation<R> + ?Sized,
{
    let transport = operation.transport();
    let gateway = transport.gateway();
    let counter = match O::KIND {
        OperationKind::Send => "otp.sends",
        OperationKind::Verify => "otp.verifications",
    };
    // A request refused before it was built is an outcome too (an application bug to see):
    // by its own checks, or by the client while it was written.
    let refused = |error: Error| {
        metrics::counter!(counter, "gateway" => gateway.as_str(), "result" => error.kind().as_str()).increment(1);
        error.with_gateway(gateway)
    };
    request.validate().map_err(refused)?;
    let wire = operation.wire_request(request).map_err(refused)?;
    // Span names must be literals: one arm per kind, the same fields in each.
    macro_rules! operation_span {
        ($name:literal) => {
            tracing::info_span!(
                $name,
                gateway = gateway.as_str(),
                operation = O::KIND.as_str(),
                api_path = wire.api_path(),
                mobile = field::Empty,
                attempts = field::Empty,
                outcome = field::Empty,
                provider_code = field::Empty,
                http_status = field::Empty,
                elapsed_ms = field::Empty,
            )
        };
    }
    let span = match O::KIND {
        OperationKind::Send => operation_span!("otp.send"),
        OperationKind::Verify => operation_span!("otp.verify"),
    };
    if let Some(mobile) = request.mobile() {
        span.record("mobile", field::display(mobile));
    }
    let started = Instant::now();
    let result = transport
        .exchange(&wire, O::RETRIES, |response| operation.decode(request, response))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    span.record("elapsed_ms", started.elapsed().as_millis() as u64);
    // The result's stable name: an outcome (`sent`, `verified`) or an error kind. A closed set,
    // as are the gateway's and the operation's names: safe as metric labels.
    let result_name = match &result {
        Ok(answer) => answer.outcome(),
        Err(error) => error.kind().as_str(),
    };
    span.record("outcome", result_name);
    metrics::counter!(counter, "gateway" => gateway.as_str(), "result" => result_name).increment(1);
    match &result {
        Ok(answer) => {
            span.record("provider_code", answer.provider_code());
            span.record("http_status", answer.http_status());
            tracing::info!(
                outcome = answer.outcome(),
                provider_code = answer.provider_code(),
                "otp {} finished",
                O::KIND.as_str()
            );
        }
        Err(error) => {
            if let Some(status) = error.http_status() {
                span.record("http_status", status);
            }
            if let Some(code) = error.provider_code() {
                span.record("provider_code", code);
            }
            tracing::warn!(
                kind = error.kind().as_str(),
                provider_code = error.provider_code().unwrap_or(""),
                retryable = error.is_retryable(),
                "otp {} failed",
                O::KIND.as_str()
            );
        }
    }
    result.map_err(|error| error.with_gateway(gateway))
}

/// A request body as JSON bytes, from a gateway's private `#[derive(Serialize)]` body type.
///
/// The bytes are wiped when dropped, and so is every smaller buffer they outgrew on the way: a
/// verify's body holds the customer's code, a send's an identity number.
#[allow(clippy::expect_used)] // See the message: it holds by construction.
pub fn json_body<T: serde::Serialize + ?Sized>(body: &T) -> Zeroizing<Vec<u8>> {
    // Room for every gateway's usual body, so that it rarely grows at all.
    let mut writer = crate::http::WipingWriter::with_capacity(512);
    // serde_json fails only for maps with non-string keys, a Serialize impl that errors, or a
    // writer that fails; the gateways' bodies are structs of strings and string sequences,
    // written by derive, and this writer never fails.
    serde_json::to_writer(&mut writer, body).expect("a body of strings always serialises to JSON by construction");
    writer.into_inner()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    #[test]
    fn kinds_have_their_span_names() {
        assert_eq!((OperationKind::Send.as_str(), OperationKind::Verify.as_str()), ("send", "verify"));
    }

    #[test]
    fn bodies_are_serde_json_bytes() {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            phone: &'a str,
            scopes: &'a [&'a str],
        }
        let body = json_body(&Body { phone: "9876543210", scopes: &["paytm", "a\"b"] });
        assert_eq!(body.as_slice(), br#"{"phone":"9876543210","scopes":["paytm","a\"b"]}"#);
    }
}
