//! Every gateway's answer parser on arbitrary bytes and statuses: it must end in a typed
//! result, never a panic. Run with `cargo +nightly fuzz run gateway_answers` from `fuzz/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&[high, low], body)) = input.split_first_chunk::<2>() else { return };
    let status = 100 + u16::from_be_bytes([high, low]) % 500;
    let _ = otp::phonepe::decode_answer(status, body);
    let _ = otp::paytm::decode_answer(status, body);
    let _ = otp::iserveu::decode_answer(status, body, Some("REF123456"));
    let _ = otp::aopay::decode_answer(status, body);
});
