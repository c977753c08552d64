//! The gateways this SDK speaks.

use std::fmt;
use std::str::FromStr;

/// A payment gateway that can send an OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Gateway {
    /// PhonePe wallet linking, "Trigger OTP".
    PhonePe,
    /// Paytm, "Send OTP API".
    Paytm,
    /// iServeU DMT-lite, unified "send OTP".
    IServeU,
    /// AOPay DMTV1, "Transaction Send OTP".
    AOPay,
}

impl Gateway {
    /// Every gateway, in a stable order.
    pub const ALL: [Gateway; 4] = [Gateway::PhonePe, Gateway::Paytm, Gateway::IServeU, Gateway::AOPay];

    /// The stable lowercase name used by the CLI and in JSON (`phonepe`, `paytm`, `iserveu`, `aopay`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Gateway::PhonePe => "phonepe",
            Gateway::Paytm => "paytm",
            Gateway::IServeU => "iserveu",
            Gateway::AOPay => "aopay",
        }
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of `phonepe`, `paytm`, `iserveu`, `aopay`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gateway {0:?}: expected phonepe, paytm, iserveu or aopay")]
pub struct UnknownGateway(pub String);

impl FromStr for Gateway {
    type Err = UnknownGateway;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gateway::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownGateway(s.to_owned()))
    }
}
