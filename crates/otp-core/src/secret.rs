//! Secrets and identity numbers: values that must never reach a log line.
//!
//! Our own types rather than `secrecy`'s: every secret's `Debug` must print exactly
//! `[redacted]` (the CLI and logs promise it; tests check it), and the role types below share
//! one implementation. The memory is wiped on drop by `zeroize`, RustCrypto's crate that
//! `secrecy` itself builds on.

use std::fmt;

use zeroize::Zeroizing;

/// A secret string: a provider token, a signature, any secret without a more specific type.
///
/// `Debug` prints `[redacted]`; there is no `Display` and no `Serialize`, so it cannot be
/// formatted into a header, a URL or a log line by accident; the value comes out only through
/// [`SecretString::expose_secret`], so every place that uses it is easy to audit. Its memory
/// is zeroed when it is dropped.
///
/// ```compile_fail
/// // No Display: this would have sent the word "[redacted]" as a credential.
/// let secret = otp_core::SecretString::new("s");
/// let _ = format!("Basic {secret}");
/// ```
///
/// ```compile_fail
/// // Roles do not mix: a client secret is not a salt key.
/// fn sign(_: otp_core::SaltKey) {}
/// sign(otp_core::ClientSecret::new("s"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<Box<str>>);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        if value.len() == value.capacity() {
            // An exact-size String becomes a box in place: its buffer is the one kept and wiped.
            return Self(Zeroizing::new(value.into_boxed_str()));
        }
        // Boxing would shrink it by reallocating, freeing the larger buffer as it was: copy it
        // instead, and wipe the original.
        let value = Zeroizing::new(value);
        Self(Zeroizing::new(Box::from(value.as_str())))
    }

    /// The secret itself. Call it only where the value goes on the wire or to the caller.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (a configuration mistake).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret in a provider's answer (a token, a reference), for a gateway crate's private
/// answer type: a JSON string, or a number as its text (as [`CodeText`](crate::CodeText) reads
/// codes); any other value, or a missing field with `#[serde(default)]`, reads as none. Read
/// straight from the answer into a buffer wiped when dropped; `[redacted]` in `Debug`.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Answer {
///     #[serde(rename = "otpToken", default)]
///     otp_token: otp_core::SecretText,
/// }
/// let read = |json: &str| serde_json::from_str::<Answer>(json).unwrap().otp_token.into_secret();
/// assert_eq!(read(r#"{"otpToken":"t-1"}"#).unwrap().expose_secret(), "t-1");
/// assert!(read(r#"{"otpToken":""}"#).is_none() && read(r#"{"otpToken":[1]}"#).is_none() && read("{}").is_none());
/// ```
#[derive(Clone, Default)]
pub struct SecretText(Option<Zeroizing<String>>);

impl SecretText {
    /// The secret, unless the answer had none or an empty one.
    pub fn into_secret(mut self) -> Option<SecretString> {
        // Moved out, not copied; the empty String left behind is what is dropped here.
        let text = std::mem::take(&mut *self.0.take()?);
        (!text.is_empty()).then(|| SecretString::new(text))
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("SecretText([redacted])"),
            None => f.write_str("SecretText(None)"),
        }
    }
}

impl SecretText {
    /// Reads only a JSON string as the secret; a number too reads as none. For
    /// `#[serde(deserialize_with = "otp_core::SecretText::string_only")]`, where a gateway
    /// documents a string and a number must not pass for it.
    pub fn string_only<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<SecretText, D::Error> {
        deserializer.deserialize_any(SecretTextVisitor { numbers: false })
    }
}

impl<'de> serde::Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretTextVisitor { numbers: true })
    }
}

/// Whether a number reads as its text (as `CodeText`) or as none.
struct SecretTextVisitor {
    numbers: bool,
}

impl SecretTextVisitor {
    fn number(&self, text: impl FnOnce() -> Option<String>) -> SecretText {
        SecretText(if self.numbers { text().map(Zeroizing::new) } else { None })
    }
}

impl<'de> serde::de::Visitor<'de> for SecretTextVisitor {
    type Value = SecretText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret text")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SecretText, E> {
        Ok(SecretText(Some(Zeroizing::new(text.to_owned()))))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<SecretText, E> {
        Ok(SecretText(Some(Zeroizing::new(text))))
    }

    fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<SecretText, E> {
        Ok(self.number(|| Some(number.to_string())))
    }

    fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<SecretText, E> {
        Ok(self.number(|| Some(number.to_string())))
    }

    fn visit_f64<E: serde::de::Error>(self, number: f64) -> Result<SecretText, E> {
        // As serde_json writes the number, like CodeText.
        Ok(self.number(|| serde_json::Number::from_f64(number).map(|n| n.to_string())))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretText, E> {
        Ok(SecretText(None))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<SecretText, E> {
        Ok(SecretText(None))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<SecretText, E> {
        Ok(SecretText(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SecretText, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(SecretText(None))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretText, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(SecretText(None))
    }
}

/// Secrets whose role matters: a salt key passed where a client secret belongs must not
/// compile. Each is a [`SecretString`] underneath (redacted, no `Display`, zeroed on drop).
macro_rules! secret_roles {
    ($($(#[$doc:meta])* $role:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq)]
        pub struct $role(SecretString);

        impl $role {
            /// Wraps the secret.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::new(value))
            }

            /// The secret itself. Call it only where the value goes on the wire.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }

            /// Whether it is the empty string (a configuration mistake).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl From<String> for $role {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $role {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        /// A secret held without a role (from a vault, say) takes this one explicitly.
        impl From<SecretString> for $role {
            fn from(value: SecretString) -> Self {
                Self(value)
            }
        }

        impl fmt::Debug for $role {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
    )*};
}

secret_roles! {
    /// PhonePe's salt key: signs every request (`X-VERIFY`).
    SaltKey;
    /// A client secret (Paytm's Basic credentials, iServeU's `client_secret` header).
    ClientSecret;
}

/// The code a customer typed: 4 to 8 ASCII digits, checked when it is made. A secret: no
/// `Display`, `[redacted]` in `Debug`, zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// Checks a code: 4 to 8 ASCII digits, nothing around them.
    pub fn parse(code: &str) -> Result<Self, crate::Error> {
        if !(4..=8).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(crate::Error::invalid_input("the OTP must be 4 to 8 digits"));
        }
        Ok(Self(SecretString::new(code)))
    }

    /// The code, for the wire body only.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// How many digits it has (Paytm takes exactly 6).
    pub fn len(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Never true: a code has at least 4 digits.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for OtpCode {
    type Err = crate::Error;

    fn from_str(code: &str) -> Result<Self, crate::Error> {
        Self::parse(code)
    }
}

/// An identity document number (Aadhaar, PAN, voter id …) sent as iServeU's `ovdData`.
///
/// `Debug` and `Display` show [`mask_identity_number`] of it; the full value comes out only
/// through [`IdentityNumber::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityNumber(Box<str>);

impl IdentityNumber {
    /// Wraps an identity number as given (it is sent exactly so).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The full number, for the wire body only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form, safe to log.
    pub fn masked(&self) -> String {
        mask_identity_number(&self.0)
    }
}

impl fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityNumber({})", self.masked())
    }
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Masks an identity document number for logs.
///
/// An Aadhaar number (12 digits, spaces and hyphens ignored) becomes `XXXX-XXXX-nnnn`; any
/// other value keeps at most its last 4 characters, and only when it has at least 8, so that
/// a short value is never shown in full.
pub fn mask_identity_number(value: &str) -> String {
    let digits: Vec<char> = value.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if digits.len() == 12 && digits.iter().all(char::is_ascii_digit) {
        let last: String = digits[8..].iter().collect();
        return format!("XXXX-XXXX-{last}");
    }
    let chars: Vec<char> = value.chars().collect();
    let shown = if chars.len() >= 8 { 4 } else { 0 };
    let hidden = chars.len() - shown;
    let mut masked = "X".repeat(hidden);
    masked.extend(&chars[hidden..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let secret = SecretString::new("s3cr3t-salt-key");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:#?}", Some(secret.clone())), "Some(\n    [redacted],\n)");
        assert_eq!(secret.expose_secret(), "s3cr3t-salt-key");
        let salt_key = SaltKey::from(secret);
        assert_eq!(format!("{salt_key:?}"), "[redacted]");
        assert_eq!(salt_key.expose_secret(), "s3cr3t-salt-key");
        let client_secret = ClientSecret::new("another-one");
        assert_eq!(format!("{:?}", (client_secret.clone(), 1)), "([redacted], 1)");
        assert!(!client_secret.is_empty() && ClientSecret::new("").is_empty());
    }

    #[test]
    fn otp_codes_are_four_to_eight_digits_and_redacted() {
        for ok in ["1234", "123456", "12345678"] {
            let code = OtpCode::parse(ok).map_err(|e| e.to_string());
            assert_eq!(code.as_ref().map(|c| c.expose_secret()), Ok(ok));
            assert_eq!(code.map(|c| format!("{c:?}")), Ok("[redacted]".to_owned()));
        }
        for bad in ["", "123", "123456789", "12 34", "12a4", "１２３４", " 1234"] {
            assert!(OtpCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_come_out_as_they_went_in() {
        assert_eq!(SecretString::from("from-str").expose_secret(), "from-str");
        assert_eq!(SecretString::from(String::from("from-string")).expose_secret(), "from-string");
        let code = OtpCode::parse("123456").unwrap();
        assert_eq!((code.len(), code.is_empty()), (6, false));
        assert_eq!(OtpCode::parse("1234").unwrap().len(), 4);
        assert_eq!("98765".parse::<OtpCode>().unwrap().expose_secret(), "98765");
        assert_eq!(IdentityNumber::new("765386439745").expose(), "765386439745");
    }

    #[test]
    fn a_secret_with_spare_capacity_is_kept_at_its_exact_size() {
        let mut spare = String::with_capacity(64);
        spare.push_str("token");
        let secret = SecretString::new(spare);
        assert_eq!((secret.expose_secret(), secret.0.len()), ("token", 5));
        assert_eq!(SecretString::new(String::from("exact")).expose_secret(), "exact");
    }

    #[test]
    fn secret_texts_read_strings_and_numbers_and_redact() {
        let read = |json: &str| serde_json::from_str::<SecretText>(json).unwrap();
        assert_eq!(read(r#""abc""#).into_secret().unwrap().expose_secret(), "abc");
        assert_eq!(read(r#""a\/b""#).into_secret().unwrap().expose_secret(), "a/b", "escapes decoded");
        assert_eq!(read("42").into_secret().unwrap().expose_secret(), "42");
        assert_eq!(read("-7").into_secret().unwrap().expose_secret(), "-7");
        assert_eq!(read("1.5").into_secret().unwrap().expose_secret(), "1.5");
        for none in [r#""""#, "null", "true", "[\"a\"]", r#"{"a":"b"}"#] {
            assert!(read(none).into_secret().is_none(), "{none}");
        }
        let owned: SecretText = serde_json::from_value(serde_json::Value::String("owned".into())).unwrap();
        assert_eq!(format!("{owned:?}"), "SecretText([redacted])");
        assert_eq!(owned.into_secret().unwrap().expose_secret(), "owned");
        assert_eq!(format!("{:?}", SecretText::default()), "SecretText(None)");
        #[derive(serde::Deserialize)]
        struct StringOnly(#[serde(deserialize_with = "SecretText::string_only")] SecretText);
        let strict = |json: &str| serde_json::from_str::<StringOnly>(json).unwrap().0.into_secret();
        assert_eq!(strict(r#""tok""#).unwrap().expose_secret(), "tok");
        for none in ["42", "-7", "1.5", "null", "[1]", r#"{"a":1}"#] {
            assert!(strict(none).is_none(), "{none}");
        }
    }

    #[test]
    fn aadhaar_is_masked_to_last_four() {
        assert_eq!(mask_identity_number("765386439745"), "XXXX-XXXX-9745");
        assert_eq!(mask_identity_number("7653 8643 9745"), "XXXX-XXXX-9745");
        assert_eq!(mask_identity_number("7653-8643-9745"), "XXXX-XXXX-9745");
        let id = IdentityNumber::new("765386439745");
        assert_eq!(format!("{id}"), "XXXX-XXXX-9745");
        assert_eq!(format!("{id:?}"), "IdentityNumber(XXXX-XXXX-9745)");
        assert!(!format!("{id:?}").contains("76538643"));
    }

    #[test]
    fn other_identity_numbers_keep_at_most_four_characters() {
        assert_eq!(mask_identity_number("ABCDE1234F"), "XXXXXX234F");
        assert_eq!(mask_identity_number("SHORT1"), "XXXXXX");
        assert_eq!(mask_identity_number(""), "");
    }
}
