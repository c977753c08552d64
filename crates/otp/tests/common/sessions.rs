//! What the verifier's end-to-end tests (verifier.rs, guard_attacks.rs, lifecycle.rs) build
//! alike: a PhonePe verification to a number, a context per caller, a real redis-server and a
//! store on it, and the real client wrapped to count and delay its calls.

#![allow(dead_code)] // Each test file uses what it needs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use otp::verifier::{Context, RedisStore, Sent, SessionGateway, StoreKey, Verification};
use otp::{
    phonepe, Error, Gateway, GatewayClient, MobileNumber, OtpCode, Outcome, SendReceipt, VerifyReceipt, VerifyRequest,
};
use otp_verifier::test_util::RedisServer;

/// The store key every test store shares (a second process opens the same sessions).
pub const STORE_KEY: [u8; 32] = [7; 32];

/// A PhonePe verification to `mobile`.
pub fn phonepe_to(mobile: &str) -> Verification {
    phonepe::SendOtpRequest::new(mobile.parse::<MobileNumber>().unwrap()).into()
}

/// A distinct client address per caller, so that only the number's rules decide.
pub fn from(caller: u32) -> Context {
    Context::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + caller)))
}

/// A real redis-server of this test's own; failing loudly without one.
pub fn redis_server() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

/// A store on `server` under [`STORE_KEY`].
pub fn redis_store(server: &RedisServer) -> RedisStore {
    RedisStore::open(&server.url(), StoreKey::from_bytes(&STORE_KEY).unwrap()).unwrap()
}

/// Answers that replace the next verify calls' answers, while any are queued.
pub type QueuedFailures = Arc<std::sync::Mutex<Vec<fn() -> Error>>>;

/// The real client, counting the verify calls that leave the verifier for the gateway, holding
/// each send back for `send_delay` and each verify for `verify_delay` (to let something happen
/// meanwhile); `verify_failures`, while any are queued, replace the next verify calls' answers,
/// and `send_outcomes` the next sends' outcomes (a provider whose answer changes between sends);
/// `answer_delay` holds each send's answer back after the provider has it.
#[derive(Clone, Debug)]
pub struct Instrumented {
    pub client: GatewayClient,
    pub verifies: Arc<AtomicUsize>,
    pub send_delay: Duration,
    pub answer_delay: Duration,
    pub verify_delay: Duration,
    pub verify_failures: QueuedFailures,
    pub send_outcomes: Arc<std::sync::Mutex<Vec<Outcome>>>,
}

impl Instrumented {
    pub fn new(client: GatewayClient) -> Self {
        Self {
            client,
            verifies: Arc::default(),
            send_delay: Duration::ZERO,
            answer_delay: Duration::ZERO,
            verify_delay: Duration::ZERO,
            verify_failures: Arc::default(),
            send_outcomes: Arc::default(),
        }
    }

    pub fn next_send_answers(&self, outcome: Outcome) {
        self.send_outcomes.lock().unwrap().push(outcome);
    }

    pub fn fail_next_verify(&self, failure: fn() -> Error) {
        self.verify_failures.lock().unwrap().push(failure);
    }
}

impl SessionGateway for Instrumented {
    type Request = Verification;
    type VerifyRequest = VerifyRequest;

    fn gateway(&self) -> Gateway {
        self.client.gateway()
    }

    fn otp_validity(&self) -> Duration {
        SessionGateway::otp_validity(&self.client)
    }

    fn mobile(request: &Verification) -> &MobileNumber {
        <GatewayClient as SessionGateway>::mobile(request)
    }

    fn validate(request: &Verification) -> Result<(), Error> {
        <GatewayClient as SessionGateway>::validate(request)
    }

    async fn send(&self, request: &Verification) -> Result<SendReceipt, Error> {
        tokio::time::sleep(self.send_delay).await;
        let answer = SessionGateway::send(&self.client, request).await;
        tokio::time::sleep(self.answer_delay).await;
        let mut receipt = answer?;
        if let Some(outcome) = self.send_outcomes.lock().unwrap().pop() {
            receipt.outcome = outcome;
        }
        Ok(receipt)
    }

    fn verify_request(request: &Verification, sent: &Sent, code: OtpCode) -> Result<VerifyRequest, Error> {
        <GatewayClient as SessionGateway>::verify_request(request, sent, code)
    }

    fn check_resend(request: &Verification) -> Result<(), Error> {
        <GatewayClient as SessionGateway>::check_resend(request)
    }

    async fn verify(&self, request: &VerifyRequest) -> Result<VerifyReceipt, Error> {
        tokio::time::sleep(self.verify_delay).await;
        self.verifies.fetch_add(1, Ordering::SeqCst);
        let failure = self.verify_failures.lock().unwrap().pop();
        match failure {
            Some(failure) => Err(failure()),
            None => SessionGateway::verify(&self.client, request).await,
        }
    }
}
