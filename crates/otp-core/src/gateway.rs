//! The gateways this SDK speaks.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A payment gateway that can send an OTP.
///
/// Deliberately not `#[non_exhaustive]`: every `match` on a gateway names every gateway (no
/// wildcard arm), so adding one is a compile error wherever a match must learn it. What a
/// gateway *is* beyond its name and validity lives in its crate's
/// [`GatewayProfile`](crate::profile::GatewayProfile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// How long the gateway's OTP stays valid after it is sent: AOPay 90 s, PhonePe, Paytm and
    /// iServeU 10 minutes (docs/gateways/*.md). The one definition of this fact: each gateway's
    /// profile, the verifier's default session lifetime, the sandbox and the CLI read it here.
    pub const fn otp_validity(self) -> Duration {
        match self {
            Gateway::PhonePe | Gateway::Paytm | Gateway::IServeU => Duration::from_secs(10 * 60),
            Gateway::AOPay => Duration::from_secs(90),
        }
    }
}

impl fmt::Display for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Gateway::ALL`]'s (`phonepe`, `paytm`, `iserveu`, `aopay`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownGateway(pub String);

impl fmt::Display for UnknownGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names come from `Gateway::ALL`, so a new gateway is listed without a word here.
        write!(f, "unknown gateway {:?}: expected ", self.0)?;
        let last = Gateway::ALL.len().saturating_sub(1);
        for (i, gateway) in Gateway::ALL.iter().enumerate() {
            let separator = match i {
                0 => "",
                i if i == last => " or ",
                _ => ", ",
            };
            write!(f, "{separator}{gateway}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownGateway {}

impl FromStr for Gateway {
    type Err = UnknownGateway;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Gateway::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownGateway(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A failed unwrap in a test is a failed test.

    use super::*;

    #[test]
    fn names_parse_back_and_validities_are_the_documented_ones() {
        for gateway in Gateway::ALL {
            assert_eq!(gateway.as_str().parse::<Gateway>(), Ok(gateway));
            assert_eq!(gateway.to_string().to_uppercase().parse::<Gateway>(), Ok(gateway));
        }
        let validities = Gateway::ALL.map(|gateway| gateway.otp_validity().as_secs());
        assert_eq!(validities, [600, 600, 600, 90], "PhonePe, Paytm, iServeU, AOPay");
        let unknown = "stripe".parse::<Gateway>().unwrap_err();
        assert_eq!(unknown, UnknownGateway("stripe".to_owned()));
        assert_eq!(unknown.to_string(), r#"unknown gateway "stripe": expected phonepe, paytm, iserveu or aopay"#);
    }
}
