//! Serialisation of request values (feature `serde`), for one purpose: a verification session
//! that must keep the send request between calls (otp-verifier seals it before it leaves the
//! process). The serialised form carries numbers, identity numbers and secrets **in clear**:
//! never log it, never store it unsealed.
//!
//! Every value is written as its wire text and read back through its checking constructor, so
//! a stored request cannot come back as a value that could not have been made.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, Serializer};

use crate::{Amount, Coordinates, Gateway, IdentityNumber, MobileNumber, Outcome, Pincode, SecretString};

/// `Serialize` as the text `$text(self)`, `Deserialize` through `$make(&str)`.
macro_rules! as_text {
    ($($type:ty: $text:expr, $make:expr;)*) => {$(
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let text: fn(&$type) -> &str = $text;
                serializer.serialize_str(text(self))
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                let make: fn(&str) -> Result<$type, String> = $make;
                make(&text).map_err(D::Error::custom)
            }
        }
    )*};
}

as_text! {
    MobileNumber: |m| m.expose_digits(), |t| MobileNumber::parse(t).map_err(|e| e.to_string());
    SecretString: |s| s.expose_secret(), |t| Ok(SecretString::new(t));
    IdentityNumber: |i| i.expose(), |t| Ok(IdentityNumber::new(t));
    Amount: |a| a.as_str(), |t| Amount::parse(t).map_err(|e| e.to_string());
    Pincode: |p| p.as_str(), |t| Pincode::parse(t).map_err(|e| e.to_string());
    Gateway: |g| g.as_str(), |t| t.parse::<Gateway>().map_err(|e| e.to_string());
    Outcome: |o| o.as_str(), |t| Outcome::from_name(t).ok_or_else(|| format!("unknown outcome {t:?}"));
}

impl Serialize for Coordinates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.latitude(), self.longitude()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Coordinates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (latitude, longitude) = <(String, String)>::deserialize(deserializer)?;
        Coordinates::new(&latitude, &longitude).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_round_trip_through_their_checking_constructors() {
        let mobile: MobileNumber = "+91 98765 43210".parse().unwrap();
        assert_eq!(serde_json::to_string(&mobile).unwrap(), "\"9876543210\"");
        assert_eq!(serde_json::from_str::<MobileNumber>("\"9876543210\"").unwrap(), mobile);
        assert!(serde_json::from_str::<MobileNumber>("\"1234\"").is_err());
        assert!(serde_json::from_str::<Amount>("\"-5\"").is_err());
        assert!(serde_json::from_str::<Pincode>("\"012345\"").is_err());
        assert!(serde_json::from_str::<Coordinates>("[\"91\",\"0\"]").is_err());
        let coordinates = Coordinates::new("12.97", "77.59").unwrap();
        let text = serde_json::to_string(&coordinates).unwrap();
        assert_eq!(serde_json::from_str::<Coordinates>(&text).unwrap(), coordinates);
        let secret = SecretString::new("s3cret");
        assert_eq!(serde_json::from_str::<SecretString>(&serde_json::to_string(&secret).unwrap()).unwrap(), secret);
        for outcome in [Outcome::Sent, Outcome::SentForRegistration, Outcome::Verified] {
            let text = serde_json::to_string(&outcome).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&text).unwrap(), outcome);
        }
        assert_eq!(serde_json::from_str::<Gateway>("\"aopay\"").unwrap(), Gateway::AOPay);
    }
}
