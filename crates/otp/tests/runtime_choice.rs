//! The run-time choice: one `GatewayClient` / `SendOtpRequest` pair per gateway, one `send_otp`.

#![cfg(feature = "full")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

use otp::{Environment, ErrorKind, Gateway, GatewayClient, MobileNumber, Outcome, Reached, SendOtpRequest};
use otp_sandbox::{credentials, Sandbox, SandboxConfig};

fn number() -> MobileNumber {
    "9876543210".parse().unwrap()
}

fn clients(sandbox: &Sandbox) -> Vec<GatewayClient> {
    let env = || Environment::Custom(sandbox.base_url());
    vec![
        otp::phonepe::PhonePeClient::builder()
            .merchant_id(credentials::PHONEPE_MERCHANT_ID)
            .salt_key(credentials::PHONEPE_SALT_KEY)
            .salt_index(credentials::PHONEPE_SALT_INDEX)
            .environment(env())
            .build()
            .unwrap()
            .into(),
        otp::paytm::PaytmClient::builder()
            .client_id(credentials::PAYTM_CLIENT_ID)
            .client_secret(credentials::PAYTM_CLIENT_SECRET)
            .environment(env())
            .build()
            .unwrap()
            .into(),
        otp::iserveu::IServeUClient::builder()
            .client_id(credentials::ISERVEU_CLIENT_ID)
            .client_secret(credentials::ISERVEU_CLIENT_SECRET)
            .username(credentials::ISERVEU_USERNAME)
            .environment(env())
            .build()
            .unwrap()
            .into(),
        otp::aopay::AOPayClient::builder()
            .registration_id(credentials::AOPAY_REGISTRATION_ID)
            .environment(env())
            .build()
            .unwrap()
            .into(),
    ]
}

fn requests() -> Vec<SendOtpRequest> {
    vec![
        otp::phonepe::SendOtpRequest::new(number()).into(),
        otp::paytm::SendOtpRequest::new(number(), "device-0042").scope("paytm").into(),
        otp::iserveu::SendOtpRequest::transaction(number(), "AADHAAR", "REF123456", "100").into(),
        otp::aopay::SendOtpRequest {
            mobile: number(),
            beneficiary_id: "BENE1001".into(),
            transaction_type: otp::aopay::TransactionType::Imps,
            amount: "100".into(),
            pincode: "560001".into(),
            address: "12 MG Road".into(),
            date_of_birth: otp::aopay::DateOfBirth::parse("20/08/1990").unwrap(),
            latitude: "12.97".into(),
            longitude: "77.59".into(),
        }
        .into(),
    ]
}

#[tokio::test]
async fn each_gateway_sends_through_the_one_entry_point() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let expected = [Gateway::PhonePe, Gateway::Paytm, Gateway::IServeU, Gateway::AOPay];
    for ((client, request), gateway) in clients(&sandbox).iter().zip(requests()).zip(expected) {
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
    let requests = requests();
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
