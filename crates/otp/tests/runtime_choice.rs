//! The run-time choice: one `GatewayClient` / `SendOtpRequest` pair per gateway, one `send_otp`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{sample_requests, sandbox_clients};
use otp::{ErrorKind, Gateway, GatewayClient, HttpOptions, Outcome, Reached};
use otp_sandbox::{Sandbox, SandboxConfig};

fn clients(sandbox: &Sandbox) -> Vec<GatewayClient> {
    sandbox_clients(&sandbox.base_url(), HttpOptions::default())
}

#[tokio::test]
async fn each_gateway_sends_through_the_one_entry_point() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let expected = [Gateway::PhonePe, Gateway::Paytm, Gateway::IServeU, Gateway::AOPay];
    for ((client, request), gateway) in clients(&sandbox).iter().zip(sample_requests("9876543210")).zip(expected) {
        assert_eq!(client.gateway(), gateway);
        assert_eq!(request.gateway(), gateway);
        let receipt = client.send_otp(&request).await.unwrap();
        assert_eq!((receipt.gateway, receipt.outcome), (gateway, Outcome::Sent));
    }
    assert_eq!(sandbox.otps("9876543210").len(), 4);
}

#[tokio::test]
async fn a_request_for_another_gateway_is_refused_before_sending() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let clients = clients(&sandbox);
    let requests = sample_requests("9876543210");
    for (i, client) in clients.iter().enumerate() {
        for (j, request) in requests.iter().enumerate() {
            if i == j {
                continue;
            }
            let error = client.send_otp(request).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest);
            assert_eq!(error.reached_provider(), Reached::No);
            assert_eq!(error.gateway(), Some(client.gateway()));
        }
    }
    assert!(sandbox.otps("9876543210").is_empty());
}
