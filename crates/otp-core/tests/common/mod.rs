//! A gateway for tests of the HTTP path: its one operation sends a given wire request and reads
//! the answer with a given decoder, through the same seam every real gateway uses.

#![allow(dead_code)] // Each test binary uses a part of it.

use otp_core::http::{RawResponse, Transport, WireRequest};
use otp_core::operation::{execute, Client, Operation, OperationKind, Request};
use otp_core::{BaseUrl, Error, Gateway, HttpOptions, MobileNumber, SendReceipt};

/// A decoder of answers.
pub type Decode = fn(&RawResponse) -> Result<SendReceipt, Error>;

/// One call: the wire request, the number for the span, the decoder, and what its checks
/// refuse (nothing, unless the test says).
pub struct Call<'a> {
    wire: WireRequest,
    mobile: &'a MobileNumber,
    decode: Decode,
    refused: Option<&'static str>,
}

/// A Paytm-labelled gateway over a transport built from the test's options.
pub struct TestGateway {
    transport: Transport,
}

impl Client for TestGateway {
    fn transport(&self) -> &Transport {
        &self.transport
    }
}

impl Request for Call<'_> {
    fn mobile(&self) -> Option<&MobileNumber> {
        Some(self.mobile)
    }

    fn validate(&self) -> Result<(), Error> {
        match self.refused {
            Some(why) => Err(Error::invalid_input(why)),
            None => Ok(()),
        }
    }
}

impl<'a> Operation<Call<'a>> for TestGateway {
    type Output = SendReceipt;
    const KIND: OperationKind = OperationKind::Send;

    fn wire_request(&self, call: &Call<'a>) -> Result<WireRequest, Error> {
        Ok(call.wire.clone())
    }

    fn decode(&self, call: &Call<'a>, response: &RawResponse) -> Result<SendReceipt, Error> {
        (call.decode)(response)
    }
}

impl TestGateway {
    /// A gateway at `base` (http to loopback allowed) with these options.
    pub fn new(base: &str, options: HttpOptions) -> Self {
        Self::with_gateway(Gateway::Paytm, base, options)
    }

    /// The same, labelled as another gateway.
    pub fn with_gateway(gateway: Gateway, base: &str, options: HttpOptions) -> Self {
        let base = BaseUrl::parse(base, false).unwrap_or_else(|e| panic!("test base URL {base}: {e}"));
        let transport = Transport::new(gateway, base, &options).unwrap_or_else(|e| panic!("test transport: {e}"));
        Self { transport }
    }

    /// Sends `wire` and reads the answer with `decode`.
    pub async fn send(&self, wire: WireRequest, mobile: &MobileNumber, decode: Decode) -> Result<SendReceipt, Error> {
        execute(self, &Call { wire, mobile, decode, refused: None }).await
    }

    /// The same, for a request whose checks refuse it with `why`.
    pub async fn send_refused(
        &self,
        wire: WireRequest,
        mobile: &MobileNumber,
        decode: Decode,
        why: &'static str,
    ) -> Result<SendReceipt, Error> {
        execute(self, &Call { wire, mobile, decode, refused: Some(why) }).await
    }
}
