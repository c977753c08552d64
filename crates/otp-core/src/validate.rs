//! Field checks shared by the gateways' request types. Messages name the field, never its value.

use crate::Error;

/// Text that goes on the wire: non-blank, at most `max_chars` characters, no control characters.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<(), Error> {
    let blank = value.chars().all(char::is_whitespace);
    let control = value.chars().any(char::is_control);
    let chars = value.chars().count();
    if blank {
        return Err(Error::invalid_input(format!("{field} must not be empty")));
    }
    if chars > max_chars {
        return Err(Error::invalid_input(format!("{field} must be at most {max_chars} characters")));
    }
    if control {
        return Err(Error::invalid_input(format!("{field} must not contain control characters")));
    }
    Ok(())
}

/// Text that goes in an HTTP header: visible ASCII only, at most `max_chars`.
pub fn header_text(field: &str, value: &str, max_chars: usize) -> Result<(), Error> {
    text(field, value, max_chars)?;
    if !value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(Error::invalid_input(format!("{field} may contain only visible ASCII characters")));
    }
    Ok(())
}

/// A decimal number (`28.6090`, `-77.2`) within `min..=max`. Nothing around it, not even
/// spaces: the value goes on the wire exactly as given.
pub fn decimal_in_range(field: &str, value: &str, min: f64, max: f64) -> Result<(), Error> {
    let unsigned = value.strip_prefix(['-', '+']).unwrap_or(value);
    // Digits with at most one point and at least one digit: no exponent, `inf` or `NaN`.
    let (mut digits, mut points) = (0usize, 0usize);
    for b in unsigned.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            _ => return Err(Error::invalid_input(format!("{field} must be a decimal number"))),
        }
    }
    if digits == 0 || points > 1 {
        return Err(Error::invalid_input(format!("{field} must be a decimal number")));
    }
    match value.parse::<f64>() {
        Ok(number) if (min..=max).contains(&number) => Ok(()),
        Ok(_) => Err(Error::invalid_input(format!("{field} must be between {min} and {max}"))),
        Err(_) => Err(Error::invalid_input(format!("{field} must be a decimal number"))),
    }
}

/// A positive amount in digits, optionally with up to 2 decimals (`100`, `100.50`).
pub fn positive_amount(field: &str, value: &str) -> Result<(), Error> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits_only(whole)
        && digits_only(fraction)
        && fraction.len() <= 2
        && value.contains('.') != fraction.is_empty();
    if !well_formed {
        return Err(Error::invalid_input(format!("{field} must be a positive number in digits (at most 2 decimals)")));
    }
    if value.bytes().all(|b| b == b'0' || b == b'.') {
        return Err(Error::invalid_input(format!("{field} must be greater than zero")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(text("name", "Nishant Mittal", 10).is_err());
        assert!(text("name", "Nishant", 10).is_ok());
        assert!(text("name", "  ", 10).is_err());
        assert!(text("name", "a\nb", 10).is_err());
        for control in ["\u{0}", "\u{1f}", "\u{7f}", "\u{85}", "long text with a tab\there"] {
            assert!(text("name", control, 64).is_err(), "{control:?}");
        }
        for blank in ["", " ", "\t\r\n\u{0b}\u{0c}", "\u{a0}\u{2003}"] {
            assert!(text("name", blank, 64).unwrap_err().to_string().contains("empty"), "{blank:?}");
        }
        assert!(text("name", "नमस्ते", 6).is_ok(), "characters, not bytes, are counted");
        assert!(header_text("device id", "Device123", 64).is_ok());
        assert!(header_text("device id", "Dévice", 64).is_err());
    }

    #[test]
    fn decimals_in_range() {
        for ok in ["28.6090", "-77.2362", "0", "90", "+12.5"] {
            assert!(decimal_in_range("lat", ok, -90.0, 90.0).is_ok(), "{ok}");
        }
        for bad in [
            "", "abc", "1e3", "NaN", "inf", "12.3.4", "-", ".", "91", "-90.01", "12,5", "--1", "+-1", "1-", " 12.5",
            "12.5 ", "1 2",
        ] {
            assert!(decimal_in_range("lat", bad, -90.0, 90.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn positive_amounts() {
        for ok in ["1", "100", "1001", "100.5", "100.50", "0.01"] {
            assert!(positive_amount("amount", ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "0.00", "-100", "+100", "1e3", "100.", ".5", "100.505", "1,000", " 100", "abc"] {
            assert!(positive_amount("amount", bad).is_err(), "{bad}");
        }
    }
}
