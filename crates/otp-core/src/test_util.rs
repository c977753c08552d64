//! Property tests of a gateway's answer parser, shared by the gateway crates (feature
//! `test-util`, for their tests only): arbitrary bytes, truncated and mutated documented
//! examples, and wrong-typed JSON must all end in a typed result whose parts agree with the
//! answer, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A test harness: a failure is a failed test.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use crate::operation::Answered;
use crate::{Error, ErrorKind, Reached};

/// Cases per property.
const CASES: u32 = 1_000;

/// Runs every property against `decode(status, body)`; `examples` are the documented answers
/// (`EXAMPLES` or `VERIFY_EXAMPLES`), which must each decode to their own code.
pub fn answer_parser_never_panics<T: Answered>(
    name: &str,
    examples: &'static [(&'static str, u16, &'static str)],
    decode: impl Fn(u16, &[u8]) -> Result<T, Error>,
) {
    let check = |status: u16, result: Result<T, Error>| -> Result<(), TestCaseError> {
        match result {
            Ok(answer) => {
                prop_assert_eq!(answer.http_status(), status, "{}", name);
                prop_assert!(!answer.provider_code().is_empty(), "{}: success without a code", name);
            }
            Err(error) => {
                // An answer was read: the error is the provider's, tagged with its gateway, and
                // never one only this side can cause (a timeout, a broken connection, a setting).
                prop_assert_eq!(error.reached_provider(), Reached::Yes, "{}: {}", name, error);
                prop_assert!(error.gateway().is_some(), "{}: untagged {}", name, error);
                prop_assert!(
                    !matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Transport) && !error.is_configuration(),
                    "{}: {}",
                    name,
                    error
                );
                prop_assert_eq!(error.http_status(), Some(status), "{}: {}", name, error);
                let _ = (format!("{error}"), format!("{error:?}"));
            }
        }
        Ok(())
    };
    for (code, status, body) in examples {
        match decode(*status, body.as_bytes()) {
            Ok(answer) => assert_eq!(answer.provider_code(), *code, "{name}"),
            Err(error) => assert_eq!(error.provider_code(), Some(*code), "{name}: {error}"),
        }
    }
    let mut runner = TestRunner::new(Config { cases: CASES, ..Config::default() });
    runner
        .run(&(status(), proptest::collection::vec(any::<u8>(), 0..600)), |(status, body)| {
            check(status, decode(status, &body))
        })
        .unwrap();
    let fixtures = (any::<prop::sample::Index>(), any::<prop::sample::Index>());
    let flips = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    runner
        .run(&(status(), fixtures, flips), |(status, (pick, cut), flips)| {
            let fixture = examples[pick.index(examples.len())].2.as_bytes();
            check(status, decode(status, &fixture[..cut.index(fixture.len() + 1)]))?;
            let mut mutated = fixture.to_vec();
            for (at, byte) in &flips {
                let i = at.index(mutated.len());
                mutated[i] = *byte;
            }
            check(status, decode(status, &mutated))
        })
        .unwrap();
    let picks = (any::<prop::sample::Index>(), any::<prop::sample::Index>());
    runner
        .run(&(status(), picks, json_value(), json_value()), |(status, (pick, field), replacement, whole)| {
            check(status, decode(status, whole.to_string().as_bytes()))?;
            // A real answer with one field's value swapped for junk of any type.
            if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(examples[pick.index(examples.len())].2)
            {
                if let Some(key) = object.keys().nth(field.index(object.len().max(1))).cloned() {
                    object.insert(key, replacement);
                    check(status, decode(status, Value::Object(object).to_string().as_bytes()))?;
                }
            }
            Ok(())
        })
        .unwrap();
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(500), Just(502), 100u16..600]
}

/// JSON of any shape, with the keys and codes the gateways use among the random ones.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("SUCCESS"), Just("0"), Just("1"), Just("-1"), Just("BE1400001"), Just("OTP")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("code".to_owned()),
                    Just("success".to_owned()),
                    Just("data".to_owned()),
                    Just("otpToken".to_owned()),
                    Just("userAuthToken".to_owned()),
                    Just("responseCode".to_owned()),
                    Just("state_token".to_owned()),
                    Just("tokens".to_owned()),
                    Just("statusCode".to_owned()),
                    Just("response_code".to_owned()),
                    Just("responsecode".to_owned()),
                    Just("status".to_owned()),
                    Just("stateresp".to_owned()),
                    Just("message".to_owned()),
                    "[a-zA-Z_]{1,8}",
                ],
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Checks a gateway's [`GatewayProfile::SETTINGS`](crate::profile::GatewayProfile::SETTINGS)
/// against what its client is built from: with nothing given, `from_settings` asks for exactly
/// those names, in that order, and the builder's error names exactly the required ones.
pub fn check_settings<P: crate::profile::GatewayProfile>() {
    let mut asked = Vec::new();
    let refused = P::from_settings(
        &mut |name| {
            asked.push(name);
            None
        },
        crate::ClientOptions::new(),
    )
    .err()
    .expect("a client with no settings is refused");
    let names: Vec<&str> = P::SETTINGS.iter().map(|setting| setting.name).collect();
    assert_eq!(asked, names, "{}: from_settings asks for other settings than SETTINGS lists", P::GATEWAY);
    let required: Vec<String> = P::SETTINGS.iter().filter(|s| s.required).map(|s| s.label()).collect();
    assert!(refused.is_configuration(), "{}: {refused}", P::GATEWAY);
    assert_eq!(refused.gateway(), Some(P::GATEWAY));
    assert_eq!(refused.description(), format!("{} client is missing: {}", P::GATEWAY, required.join(", ")));
}
