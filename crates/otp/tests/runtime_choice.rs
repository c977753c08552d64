//! The run-time choice: one `GatewayClient` / `SendOtpRequest` pair per gateway, one `send_otp`.
//! Every gateway runs, from its fixtures in tests/common/mod.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;

use common::{client_at, sample_request};
use otp::{ErrorKind, Gateway, GatewayClient, HttpOptions, Outcome, Reached};
use otp_sandbox::{Sandbox, SandboxConfig};

fn client(sandbox: &Sandbox, gateway: Gateway) -> GatewayClient {
    client_at(gateway, &sandbox.base_url(), HttpOptions::default())
}

#[tokio::test]
async fn each_gateway_sends_through_the_one_entry_point() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    for gateway in Gateway::ALL {
        let (client, request) = (client(&sandbox, gateway), sample_request(gateway, "9876543210"));
        assert_eq!((client.gateway(), request.gateway()), (gateway, gateway));
        assert_eq!(request.mobile().expose_digits(), "9876543210");
        let receipt = client.send_otp(&request).await.unwrap();
        assert_eq!((receipt.gateway, receipt.outcome), (gateway, Outcome::Sent));
    }
    assert_eq!(sandbox.otps("9876543210").len(), Gateway::ALL.len());
}

#[tokio::test]
async fn a_request_for_another_gateway_is_refused_before_sending() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut refused = 0;
    for gateway in Gateway::ALL {
        let client = client(&sandbox, gateway);
        for other in Gateway::ALL.into_iter().filter(|other| *other != gateway) {
            let error = client.send_otp(&sample_request(other, "9876543210")).await.unwrap_err();
            assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
            assert_eq!(error.gateway(), Some(gateway));
            refused += 1;
        }
    }
    assert_eq!(refused, Gateway::ALL.len() * (Gateway::ALL.len() - 1));
    assert!(sandbox.otps("9876543210").is_empty());
}
