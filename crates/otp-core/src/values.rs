//! Request values that are valid by construction, like [`MobileNumber`](crate::MobileNumber):
//! each keeps the exact text that goes on the wire, checked once when it is made.

use std::fmt;
use std::str::FromStr;

use crate::{validate, Error};

/// A positive amount in rupees, in digits with at most two decimals (`100`, `1500.50`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Amount(Box<str>);

impl Amount {
    /// Checks and keeps an amount as written: no sign, exponent, separators or spaces.
    pub fn parse(value: &str) -> Result<Self, Error> {
        validate::positive_amount("amount", value)?;
        Ok(Self(value.into()))
    }

    /// The amount as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Indian postal index number: six digits, not starting with 0.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pincode(Box<str>);

impl Pincode {
    /// Checks a pincode.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bytes = value.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) || bytes[0] == b'0' {
            return Err(Error::invalid_input("pincode must be 6 digits, not starting with 0"));
        }
        Ok(Self(value.into()))
    }

    /// The pincode as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A latitude and longitude in decimal degrees, each kept as written (`28.6090`, `77.2362`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Coordinates {
    latitude: Box<str>,
    longitude: Box<str>,
}

impl Coordinates {
    /// Checks a latitude (−90 to 90) and a longitude (−180 to 180): plain decimals, nothing
    /// around them.
    pub fn new(latitude: &str, longitude: &str) -> Result<Self, Error> {
        validate::decimal_in_range("latitude", latitude, -90.0, 90.0)?;
        validate::decimal_in_range("longitude", longitude, -180.0, 180.0)?;
        Ok(Self { latitude: latitude.into(), longitude: longitude.into() })
    }

    /// The latitude as it goes on the wire.
    pub fn latitude(&self) -> &str {
        &self.latitude
    }

    /// The longitude as it goes on the wire.
    pub fn longitude(&self) -> &str {
        &self.longitude
    }
}

// Amounts, pincodes and coordinates are not personal in themselves, but a pincode with
// coordinates locates a customer: Debug shows the amount, and only the shape of the others.
impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl fmt::Debug for Pincode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pincode(XXXXXX)")
    }
}

impl fmt::Debug for Coordinates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Coordinates(..)")
    }
}

impl FromStr for Amount {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        Self::parse(value)
    }
}

impl FromStr for Pincode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Error> {
        Self::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_text() {
        assert_eq!(Amount::parse("1500.50").map(|a| a.as_str().to_owned()).ok().as_deref(), Some("1500.50"));
        for bad in ["0", "-1", "1e3", " 100", "100.505", "1,000"] {
            assert!(Amount::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", "100".parse::<Amount>().ok()), "Some(Amount(100))");
    }

    #[test]
    fn pincodes_are_six_digits_not_starting_with_zero() {
        assert_eq!(Pincode::parse("560001").map(|p| p.as_str().to_owned()).ok().as_deref(), Some("560001"));
        for bad in ["056000", "56000", "5600011", "56000a", "", "५६०००१"] {
            assert!(Pincode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{:?}", Pincode::parse("560001").ok()), "Some(Pincode(XXXXXX))");
    }

    #[test]
    fn coordinates_are_in_range_and_kept_as_written() {
        let here = Coordinates::new("12.9716", "-77.5946");
        assert_eq!(here.as_ref().map(|c| (c.latitude(), c.longitude())).ok(), Some(("12.9716", "-77.5946")));
        for (lat, long) in [("90.1", "0"), ("0", "180.5"), (" 1", "2"), ("1e1", "2"), ("NaN", "0")] {
            assert!(Coordinates::new(lat, long).is_err(), "{lat},{long}");
        }
        assert_eq!(format!("{:?}", here.unwrap()), "Coordinates(..)");
    }
}
