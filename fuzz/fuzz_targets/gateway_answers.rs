//! Every gateway's answer parser on arbitrary bytes and statuses: it must end in a typed
//! result, never a panic. Run with `cargo +nightly fuzz run gateway_answers` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otp_core::http::RawResponse;
use otp_core::operation::Operation as _;
use otp::Environment;

fn mobile() -> otp::MobileNumber {
    "9876543210".parse().expect("a valid number")
}

fuzz_target!(|input: &[u8]| {
    let Some((&[high, low], body)) = input.split_first_chunk::<2>() else { return };
    let status = 100 + u16::from_be_bytes([high, low]) % 500;
    let response = RawResponse::new(status, Default::default(), body.to_vec().into());
    let env = || Environment::Custom("http://127.0.0.1:9".into());
    let phonepe = otp::phonepe::PhonePeClient::builder().merchant_id("M").salt_key("k").salt_index(1).environment(env());
    let _ = phonepe.build().map(|c| c.decode(&otp::phonepe::SendOtpRequest::new(mobile()), &response));
    let paytm = otp::paytm::PaytmClient::builder().client_id("c").client_secret("s").environment(env());
    let _ = paytm.build().map(|c| c.decode(&otp::paytm::SendOtpRequest::new(mobile(), "d").scope("paytm"), &response));
    let iserveu = otp::iserveu::IServeUClient::builder().client_id("c").client_secret("s").environment(env());
    let amount = otp::Amount::parse("100").expect("valid by construction");
    let request = otp::iserveu::TransactionOtpRequest::new(mobile(), "AADHAAR", "REF123456", amount).into();
    let _ = iserveu.build().map(|c| c.decode(&request, &response));
    let aopay = otp::aopay::AOPayClient::builder().registration_id("R").environment(env());
    let _ = aopay.build().map(|c| {
        let dob = otp::aopay::DateOfBirth::parse("20/08/1990").expect("a valid date");
        let request = otp::aopay::SendOtpRequest::new(
            mobile(),
            "B1",
            otp::aopay::TransactionType::Imps,
            otp::Amount::parse("100").expect("valid by construction"),
            otp::aopay::Remitter::new(
                "a",
                otp::Pincode::parse("560001").expect("valid by construction"),
                dob,
                otp::Coordinates::new("12.9", "77.5").expect("valid by construction"),
            ).expect("valid by construction"),
        ).expect("valid by construction");
        c.decode(&request, &response)
    });
});
