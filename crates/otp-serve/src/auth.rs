//! API keys: `Authorization: Bearer <key>`, matched by SHA-256 digest in constant time, each
//! with a tenant and scopes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use otp::SecretString;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::app::App;
use crate::problem::{Code, Problem};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// Start, check, resend and cancel verifications.
    VerificationsWrite,
    /// Read a verification's status.
    VerificationsRead,
    /// Receive the gateway's credential on an approved check (otherwise only
    /// `credential_returned: true`).
    CredentialsRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 3] = [Scope::VerificationsWrite, Scope::VerificationsRead, Scope::CredentialsRead];

    /// The name in the config (`verifications:write`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::VerificationsWrite => "verifications:write",
            Scope::VerificationsRead => "verifications:read",
            Scope::CredentialsRead => "credentials:read",
        }
    }

    /// The scope with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == name)
    }
}

/// One API key as the config lists it: a name (for logs and rotation), its tenant, the SHA-256
/// of the key, and its scopes. The key itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    name: String,
    tenant: String,
    digest: [u8; 32],
    scopes: Vec<Scope>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Names and tenants: 1 to 64 letters, digits, `-`, `_`, `.` (they show in logs and derive
/// ids, so nothing that needs escaping).
pub(crate) fn plain_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ApiKey {
    /// A key by its SHA-256 digest as 64 hex digits (what `otp serve hash-key` prints). `Err`
    /// says which part is wrong.
    pub fn from_digest(name: &str, tenant: &str, sha256_hex: &str, scopes: &[Scope]) -> Result<Self, String> {
        if !plain_name(name) {
            return Err("a key's name is 1 to 64 letters, digits, -, _ or .".to_owned());
        }
        if !plain_name(tenant) {
            return Err("a tenant is 1 to 64 letters, digits, -, _ or .".to_owned());
        }
        let digest = parse_hex_digest(sha256_hex).ok_or("sha256 must be 64 hex digits (the key's SHA-256)")?;
        if scopes.is_empty() {
            return Err("a key needs at least one scope".to_owned());
        }
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        Ok(Self { name: name.to_owned(), tenant: tenant.to_owned(), digest, scopes })
    }

    /// A key for `key` itself (hashed here; the key is not kept).
    pub fn from_key(name: &str, tenant: &str, key: &SecretString, scopes: &[Scope]) -> Result<Self, String> {
        let digest = hex(&Sha256::digest(key.expose_secret().as_bytes()));
        Self::from_digest(name, tenant, &digest, scopes)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant its verifications belong to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// What it may do.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }
}

fn parse_hex_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random API key and the config lines that admit it (`otp serve hash-key`).
#[derive(Debug)]
#[non_exhaustive]
pub struct NewApiKey {
    /// The key: give it to the calling backend, once (a secret: no `Display`, `Debug` redacts).
    pub key: SecretString,
    /// Its SHA-256, as the config's `sha256` takes it.
    pub sha256: String,
}

impl NewApiKey {
    /// 32 random bytes from the operating system, as `otp_sk_` and 43 URL-safe characters.
    pub fn generate() -> Result<Self, otp::Error> {
        use base64::Engine as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut())
            .map_err(|e| otp::Error::configuration(format!("the operating system's random source failed: {e}")))?;
        let key = format!("otp_sk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes));
        let sha256 = hex(&Sha256::digest(key.as_bytes()));
        Ok(Self { key: SecretString::new(key), sha256 })
    }

    /// The `[[api_keys]]` table admitting it, for `tenant` with `scopes`.
    pub fn config_lines(&self, name: &str, tenant: &str, scopes: &[Scope]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| format!("{:?}", s.as_str())).collect();
        format!(
            "[[api_keys]]\nname = {name:?}\ntenant = {tenant:?}\nsha256 = \"{}\"\nscopes = [{}]\n",
            self.sha256,
            scopes.join(", ")
        )
    }
}

/// The configured keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys(Vec<ApiKey>);

impl Keys {
    pub(crate) fn new(keys: Vec<ApiKey>) -> Self {
        Self(keys)
    }

    /// The key whose digest is the digest of `given`. Every configured digest is compared, in
    /// constant time, whatever matched: the time taken tells nothing of which key, or how
    /// much of one, a guess got right.
    fn find(&self, given: &str) -> Option<&ApiKey> {
        let digest = Sha256::digest(given.as_bytes());
        let mut found = None;
        for key in &self.0 {
            if bool::from(key.digest.as_slice().ct_eq(digest.as_slice())) {
                found = Some(key);
            }
        }
        found
    }
}

/// The caller, as its key says.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) tenant: String,
    scopes: Vec<Scope>,
}

impl Caller {
    /// `forbidden` unless the key has `scope`.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.may(scope) {
            Ok(())
        } else {
            Err(Problem::new(Code::Forbidden, format!("this API key lacks the scope {}", scope.as_str())))
        }
    }

    pub(crate) fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Problem> {
        let unauthenticated = |detail: &str| Problem::new(Code::Unauthenticated, detail);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthenticated("send the API key as Authorization: Bearer <key>"))?;
        let given = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            // An empty token is no key, even where one might hash alike.
            .filter(|token| !token.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be Bearer <key>"))?;
        let key = app.keys.find(given).ok_or_else(|| unauthenticated("this API key is not known"))?;
        Ok(Caller { tenant: key.tenant.clone(), scopes: key.scopes.clone() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_is_found_by_its_digest_only() {
        let secret = SecretString::new("otp_sk_example");
        let key = ApiKey::from_key("backend", "checkout", &secret, &[Scope::VerificationsWrite]).unwrap();
        let other = ApiKey::from_key("other", "payouts", &SecretString::new("otp_sk_other"), &Scope::ALL).unwrap();
        let keys = Keys::new(vec![key.clone(), other]);
        assert_eq!(keys.find("otp_sk_example").map(ApiKey::tenant), Some("checkout"));
        assert_eq!(keys.find("otp_sk_other").map(ApiKey::tenant), Some("payouts"));
        assert!(keys.find("otp_sk_exampl").is_none());
        assert!(keys.find("").is_none());
        let shown = format!("{key:?}");
        assert!(!shown.contains("otp_sk") && shown.contains("checkout"), "{shown}");
    }

    #[test]
    fn digests_names_and_scopes_are_checked() {
        let digest = "a".repeat(64);
        assert!(ApiKey::from_digest("k", "t", &digest, &[Scope::VerificationsRead]).is_ok());
        assert!(ApiKey::from_digest("k", "t", &digest.to_uppercase(), &[Scope::VerificationsRead]).is_ok());
        assert!(ApiKey::from_digest("k", "t", &"a".repeat(63), &[Scope::VerificationsRead]).is_err());
        assert!(ApiKey::from_digest("k", "t", &"g".repeat(64), &[Scope::VerificationsRead]).is_err());
        assert!(ApiKey::from_digest("k", "t", &digest, &[]).is_err());
        assert!(ApiKey::from_digest("", "t", &digest, &[Scope::VerificationsRead]).is_err());
        assert!(ApiKey::from_digest("k", "a tenant", &digest, &[Scope::VerificationsRead]).is_err());
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::from_name("verifications:delete"), None);
    }

    #[test]
    fn a_new_key_hashes_to_its_config_line() {
        let new = NewApiKey::generate().unwrap();
        assert!(new.key.expose_secret().starts_with("otp_sk_") && new.key.expose_secret().len() == 50);
        let lines = new.config_lines("backend", "checkout", &[Scope::VerificationsWrite]);
        assert!(lines.contains(&new.sha256) && lines.contains("\"verifications:write\""), "{lines}");
        let key = ApiKey::from_key("backend", "checkout", &new.key, &[Scope::VerificationsWrite]).unwrap();
        assert_eq!(key, ApiKey::from_digest("backend", "checkout", &new.sha256, &[Scope::VerificationsWrite]).unwrap());
        assert_ne!(NewApiKey::generate().unwrap().sha256, new.sha256);
        assert!(!format!("{new:?}").contains(new.key.expose_secret()));
    }
}
