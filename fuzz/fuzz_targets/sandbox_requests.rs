//! The sandbox's request checks on arbitrary bodies and header values for each gateway route:
//! every input gets an answer, never a panic. Run with `cargo +nightly fuzz run sandbox_requests`.
#![no_main]

use libfuzzer_sys::fuzz_target;

static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();

const ROUTES: [(&str, Option<&str>); 4] = [
    ("/v3/merchant/otp/send", None),
    ("/v4/signin/otp/sv1/", Some("locale=en-IN")),
    ("/common/dmt-lite/unified/otp/send", None),
    ("/api/AOP/DMTV1/TransactionSendOtp", None),
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let (path, query) = ROUTES[usize::from(selector) % ROUTES.len()];
    // The first line is a header value for every credential header; the rest is the body.
    let split = rest.iter().position(|b| *b == b'\n').unwrap_or(0);
    let value = String::from_utf8_lossy(&rest[..split]);
    let headers = [
        ("x-verify", value.as_ref()),
        ("authorization", value.as_ref()),
        ("x-device-identifier", value.as_ref()),
        ("client_id", value.as_ref()),
        ("client_secret", value.as_ref()),
    ];
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    });
    let status = runtime.block_on(otp_sandbox::status_for_fuzzing(path, query, &headers, &rest[split..]));
    assert!(status.is_some());
});
