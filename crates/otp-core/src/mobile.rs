//! Indian mobile numbers, valid by construction.

use std::fmt;
use std::str::FromStr;

/// An Indian mobile number: 10 digits, the first 6–9.
///
/// [`MobileNumber::parse`] accepts the forms people type — `+91 98765 43210`, `0091…`,
/// `91…` (12 digits in all), a leading `0`, spaces and hyphens — and keeps the bare 10 digits.
/// `Debug` and `Display` show the last 4 digits only (`XXXXXX3210`); the digits come out only
/// through [`MobileNumber::expose_digits`], which is for building the wire body.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MobileNumber([u8; 10]);

/// Why a mobile number was refused. It never repeats the number itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MobileNumberError {
    /// Nothing but separators was given.
    #[error("mobile number is empty")]
    Empty,
    /// A character other than digits, spaces, hyphens and one leading `+`.
    #[error("mobile number may contain only digits, spaces, hyphens and a leading +")]
    InvalidCharacter,
    /// `+` followed by something other than 91 and 10 digits.
    #[error("an international mobile number must be +91 followed by 10 digits")]
    NotIndian,
    /// The digits (after removing a prefix) are not 10.
    #[error("mobile number must have 10 digits (optionally after +91, 0091, 91 or 0), it has {0}")]
    WrongLength(usize),
    /// The first of the 10 digits is not 6, 7, 8 or 9.
    #[error("an Indian mobile number starts with 6, 7, 8 or 9")]
    InvalidFirstDigit,
}

impl MobileNumber {
    /// Parses and normalises a mobile number.
    pub fn parse(input: &str) -> Result<Self, MobileNumberError> {
        let compact: String = input.chars().filter(|c| *c != ' ' && *c != '-').collect();
        if compact.is_empty() {
            return Err(MobileNumberError::Empty);
        }
        let (international, digits) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_str()),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MobileNumberError::InvalidCharacter);
        }
        let national = if international {
            match digits.strip_prefix("91") {
                Some(rest) if rest.len() == 10 => rest,
                _ => return Err(MobileNumberError::NotIndian),
            }
        } else {
            match digits.len() {
                14 if digits.starts_with("0091") => &digits[4..],
                12 if digits.starts_with("91") => &digits[2..],
                11 if digits.starts_with('0') => &digits[1..],
                _ => digits,
            }
        };
        let bytes: [u8; 10] =
            national.as_bytes().try_into().map_err(|_| MobileNumberError::WrongLength(national.len()))?;
        if !matches!(bytes[0], b'6'..=b'9') {
            return Err(MobileNumberError::InvalidFirstDigit);
        }
        Ok(Self(bytes))
    }

    /// The bare 10 digits, for the wire body. Never log them.
    #[allow(clippy::expect_used)] // See the message: a silent "" here would send to no number.
    pub fn expose_digits(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a MobileNumber holds ten ASCII digits by construction")
    }

    /// The masked form, `XXXXXX` and the last 4 digits.
    pub fn masked(&self) -> String {
        format!("XXXXXX{}", &self.expose_digits()[6..])
    }
}

/// Masks every run of 10 or more ASCII digits in free text (a provider's message that echoes a
/// mobile or Aadhaar number) as a number is masked: `XXXXXX` and the last 4 digits.
///
/// ```
/// assert_eq!(otp_core::mask_digit_runs("OTP sent to 9876543210."), "OTP sent to XXXXXX3210.");
/// assert_eq!(otp_core::mask_digit_runs("Aadhaar 765386439745 ok"), "Aadhaar XXXXXXXX9745 ok");
/// assert_eq!(otp_core::mask_digit_runs("code 123456"), "code 123456");
/// ```
pub fn mask_digit_runs(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut start = None;
    for (index, byte) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        match (byte.is_ascii_digit(), start) {
            (true, None) => start = Some(index),
            (false, Some(from)) => {
                if index - from >= 10 {
                    runs.push((from, index));
                }
                start = None;
            }
            _ => {}
        }
    }
    if runs.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut masked = String::with_capacity(text.len());
    let mut copied = 0;
    for (from, to) in runs {
        masked.push_str(&text[copied..from]);
        masked.extend(std::iter::repeat_n('X', to - from - 4));
        masked.push_str(&text[to - 4..to]);
        copied = to;
    }
    masked.push_str(&text[copied..]);
    std::borrow::Cow::Owned(masked)
}

impl FromStr for MobileNumber {
    type Err = MobileNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobileNumber({})", self.masked())
    }
}

impl fmt::Display for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        let cases = [
            "9876543210",
            "+919876543210",
            "+91 98765 43210",
            "+91-98765-43210",
            "00919876543210",
            "0091 98765 43210",
            "919876543210",
            "91 9876543210",
            "09876543210",
            "098765-43210",
            "98765 43210",
            "987-654-3210",
            " 9876543210 ",
        ];
        for case in cases {
            let number = MobileNumber::parse(case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            assert_eq!(number.expose_digits(), "9876543210", "{case:?}");
        }
        for first in ['6', '7', '8', '9'] {
            let input = format!("{first}000000000");
            assert_eq!(MobileNumber::parse(&input).unwrap().expose_digits(), input);
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        use MobileNumberError::*;
        let cases: &[(&str, MobileNumberError)] = &[
            ("", Empty),
            ("  - ", Empty),
            ("987654321", WrongLength(9)),
            ("98765432101", WrongLength(11)),
            ("5876543210", InvalidFirstDigit),
            ("0876543210", InvalidFirstDigit),
            ("1234567890", InvalidFirstDigit),
            ("+449876543210", NotIndian),
            ("+91987654321", NotIndian),
            ("+9109876543210", NotIndian),
            ("++919876543210", InvalidCharacter),
            ("98765o3210", InvalidCharacter),
            ("(987) 654 3210", InvalidCharacter),
            ("9876543210\t", InvalidCharacter),
            ("9876.543.210", InvalidCharacter),
            ("919876543210 1", WrongLength(13)),
            ("0919876543210", WrongLength(13)),
            ("009198765432", WrongLength(12)),
            // 11 digits with a leading 0: the 0 goes, and "0098765432" fails on its first digit.
            ("00098765432", InvalidFirstDigit),
            ("٩٨٧٦٥٤٣٢١٠", InvalidCharacter),
            // 14 digits are a number only after 0091: anything else would send the OTP to the
            // last 10 digits of some other string.
            ("12349876543210", WrongLength(14)),
            ("00929876543210", WrongLength(14)),
            // 12 digits are a number only after 91.
            ("929876543210", WrongLength(12)),
        ];
        for (input, expected) in cases {
            assert_eq!(MobileNumber::parse(input).as_ref(), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn ten_digits_starting_with_91_are_a_number_not_a_prefix() {
        assert_eq!(MobileNumber::parse("9198765432").unwrap().expose_digits(), "9198765432");
    }

    #[test]
    fn shows_only_the_last_four_digits() {
        let number = MobileNumber::parse("+91 98765 43210").unwrap();
        assert_eq!(format!("{number}"), "XXXXXX3210");
        assert_eq!(format!("{number:?}"), "MobileNumber(XXXXXX3210)");
        let err = MobileNumber::parse("5876543210").unwrap_err().to_string();
        assert!(!err.contains("5876543210"), "{err}");
    }
}
