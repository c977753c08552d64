//! Magic mobile numbers: deterministic answers for error paths, whatever the credentials.
//!
//! [`NUMBERS`] is the one list: [`lookup`] reads it, and so do the inbox page's table
//! (`GET /__sandbox/magic`) and a test that holds README's table to it. What each gateway
//! answers is said next to its answer, in its own file (`Profile::magic_answer`).
//!
//! | mobile | phonepe | paytm | iserveu | aopay |
//! |---|---|---|---|---|
//! | 9000000001 | 200 `OTP_LIMIT_EXCEEDED` | `BE1425006` | statusCode `1` | code 2 failure |
//! | 9000000002 | 200 `USER_BLOCKED` | `BE1424001` | statusCode `1` | code 2 failure |
//! | 9000000003 | 500 `INTERNAL_SERVER_ERROR` | 500 `BE1426003` | HTTP 500 | HTTP 500 |
//! | 9000000004 | answers after 35 s | same | same | same |
//! | 9000000005 | 429 `TOO_MANY_REQUESTS` | `BE1425004` | statusCode `1` | code 0: sent for registration |
//! | 9000000006 | 502 with an HTML body | same | same | same |

/// Every magic case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `9000000001`: the per-number OTP limit.
    OtpLimit,
    /// `9000000002`: the customer is blocked.
    Blocked,
    /// `9000000003`: the provider fails.
    ProviderError,
    /// `9000000004`: the answer comes after the slow delay (35 s by default).
    Slow,
    /// `9000000005`: throttled (PhonePe, Paytm), failed (iServeU), sent for registration (AOPay).
    Throttled,
    /// `9000000006`: a proxy's HTML 502.
    BadGateway,
}

impl Magic {
    /// What the case stands for, in a few words (the inbox page shows it).
    pub fn summary(self) -> &'static str {
        match self {
            Magic::OtpLimit => "the per-number OTP limit",
            Magic::Blocked => "the customer is blocked",
            Magic::ProviderError => "the provider fails",
            Magic::Slow => "a slow answer",
            Magic::Throttled => "throttled, or sent for registration",
            Magic::BadGateway => "a proxy's HTML 502",
        }
    }
}

/// Every magic number and its case, in order.
pub const NUMBERS: &[(&str, Magic)] = &[
    ("9000000001", Magic::OtpLimit),
    ("9000000002", Magic::Blocked),
    ("9000000003", Magic::ProviderError),
    ("9000000004", Magic::Slow),
    ("9000000005", Magic::Throttled),
    ("9000000006", Magic::BadGateway),
];

/// What every gateway answers for [`Magic::Slow`]: its normal answer, late.
pub const SLOW_ANSWER: &str = "answers after 35 s";
/// What every gateway answers for [`Magic::BadGateway`].
pub const BAD_GATEWAY_ANSWER: &str = "502 with an HTML body";

/// The magic case of a number, if it is one.
pub fn lookup(mobile: &str) -> Option<Magic> {
    NUMBERS.iter().find(|(number, _)| *number == mobile).map(|(_, magic)| *magic)
}

/// The body of the `9000000006` answer.
pub const BAD_GATEWAY_HTML: &str =
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
