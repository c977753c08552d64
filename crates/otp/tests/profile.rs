//! Each gateway's profile, for every gateway: the facts the umbrella, the verifier, the
//! sandbox's clients and the CLI read from it agree with each other and with the gateway docs.
//! The expected values are fixtures keyed by `Gateway` with exhaustive matches
//! (tests/common/mod.rs): a gateway without them does not compile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap in a test is a failed test.

mod common;
use common::{documented_env_vars, documented_validity, sample_may_be_resent, sample_request, sandbox_client};

use std::time::{Duration, SystemTime};

use otp::sandbox::{Sandbox, SandboxConfig};
use otp::verifier::{Context, MemoryStore, SessionGateway, Verification, Verifier};
use otp::{ClientOptions, ErrorKind, Gateway, GatewayClient, Reached};

/// The validity is defined once (`Gateway::otp_validity`): the profile, the client, the
/// verifier's default session lifetime and the docs agree for every gateway.
#[tokio::test]
async fn every_gateways_otp_validity_is_defined_once_and_read_everywhere() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    for (i, gateway) in Gateway::ALL.into_iter().enumerate() {
        let validity = gateway.otp_validity();
        assert_eq!(validity, documented_validity(gateway), "{gateway}");
        let client = sandbox_client(&sandbox, gateway);
        assert_eq!(client.otp_validity(), validity, "{gateway}: the profile");
        assert_eq!(SessionGateway::otp_validity(&client), validity, "{gateway}: the verifier's gateway");
        let verifier = Verifier::new(client, MemoryStore::new());
        let mobile = format!("98765000{i}{i}");
        let context = Context::new(format!("203.0.113.{}", i + 1).parse().unwrap());
        let before = SystemTime::now();
        let started = verifier.start(sample_request(gateway, &mobile).into(), &context).await.unwrap();
        let lifetime = started.expires_at.duration_since(before).unwrap();
        // Sessions keep their times in whole milliseconds.
        let lifetime = lifetime + Duration::from_millis(1);
        assert!(lifetime >= validity && lifetime <= validity + Duration::from_secs(5), "{gateway}: {lifetime:?}");
    }
    assert_eq!(otp::aopay::OTP_VALIDITY, Gateway::AOPay.otp_validity());
}

#[test]
fn every_gateway_names_its_settings_and_is_built_from_them() {
    for gateway in Gateway::ALL {
        let settings = GatewayClient::settings(gateway).expect("every gateway's feature is on here");
        let env_vars: Vec<String> = settings.iter().map(|setting| setting.env_var(gateway)).collect();
        assert_eq!(env_vars, documented_env_vars(gateway), "{gateway}");
        let mut asked = Vec::new();
        let refused = GatewayClient::from_settings(
            gateway,
            &mut |name| {
                asked.push(name);
                None
            },
            ClientOptions::new(),
        )
        .unwrap_err();
        assert_eq!(asked, settings.iter().map(|setting| setting.name).collect::<Vec<_>>(), "{gateway}");
        assert!(refused.is_configuration() && refused.gateway() == Some(gateway), "{gateway}: {refused}");
        for setting in settings.iter().filter(|setting| setting.required) {
            assert!(refused.description().contains(&setting.label()), "{gateway}: {refused}");
        }
    }
}

#[test]
fn every_gateways_resend_rule_is_its_profiles() {
    for gateway in Gateway::ALL {
        let request = sample_request(gateway, "9876543210");
        let verification = Verification::new(request.clone());
        for answer in [request.check_resend(), GatewayClient::check_resend(&verification)] {
            match answer {
                Ok(()) => assert!(sample_may_be_resent(gateway), "{gateway}: resent"),
                Err(error) => {
                    assert!(!sample_may_be_resent(gateway), "{gateway}: {error}");
                    assert_eq!((error.kind(), error.reached_provider()), (ErrorKind::InvalidRequest, Reached::No));
                    assert_eq!(error.gateway(), Some(gateway));
                }
            }
        }
    }
}
