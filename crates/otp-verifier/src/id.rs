//! Opaque verification ids and the other random values the verifier makes.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use otp_core::Error;

const ID_BYTES: usize = 16;

/// A verification's id: 128 random bits from the operating system, as 22 URL-safe characters.
///
/// It is what the application hands its client between start and check. It is not a secret
/// like a code (a check still needs the code), but it names one customer's session, so `Debug`
/// shows only its first characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerificationId {
    bytes: [u8; ID_BYTES],
    text: Box<str>,
}

impl VerificationId {
    pub(crate) fn random() -> Result<Self, Error> {
        Ok(Self::from_bytes(random_bytes()?))
    }

    pub(crate) fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        Self { bytes, text: URL_SAFE_NO_PAD.encode(bytes).into_boxed_str() }
    }

    /// Reads an id as [`VerificationId::as_str`] wrote it; anything else is `invalid_request`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || Error::invalid_input("not a verification id");
        if text.len() != 22 {
            return Err(invalid());
        }
        let decoded = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let bytes: [u8; ID_BYTES] = decoded.try_into().map_err(|_| invalid())?;
        let id = Self::from_bytes(bytes);
        // Only the canonical spelling: one id, one text.
        if &*id.text != text {
            return Err(invalid());
        }
        Ok(id)
    }

    /// The id as text, for the application's client.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.bytes
    }
}

impl fmt::Debug for VerificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerificationId({}…)", &self.text[..4])
    }
}

impl std::str::FromStr for VerificationId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

/// Random bytes from the operating system; its failure is reported, never replaced by a
/// weaker source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::configuration(format!("the operating system's random source failed: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_random_url_safe_and_read_back_only_as_written() {
        let a = VerificationId::random().unwrap();
        let b = VerificationId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(VerificationId::parse(a.as_str()).unwrap(), a);
        assert!(VerificationId::parse(&a.as_str()[..21]).is_err());
        assert!(VerificationId::parse("!!!!!!!!!!!!!!!!!!!!!!").is_err());
        // 22 characters carry 132 bits: the last character's 4 spare bits must be zero, so an id
        // has one spelling. 'B' (000001) sets one; 'A', 'Q', 'g', 'w' (xx0000) set none.
        let stem = &a.as_str()[..21];
        assert!(VerificationId::parse(&format!("{stem}B")).is_err(), "a spare bit set");
        for last in ['A', 'Q', 'g', 'w'] {
            let id = VerificationId::parse(&format!("{stem}{last}")).unwrap();
            assert_eq!(id.as_str(), format!("{stem}{last}"));
        }
        assert_eq!(format!("{a:?}"), format!("VerificationId({}…)", &a.as_str()[..4]));
    }
}
