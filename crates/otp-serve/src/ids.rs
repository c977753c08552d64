//! Public verification ids, which bind a verification to the tenant that started it, and the
//! tenant scoping of idempotency keys.
//!
//! A public id is `<verifier id>.<gateway>.<tag>`: the verifier's own id (22 URL-safe
//! characters, 128 random bits), the gateway's name (which verifier holds it), and a tag of 16
//! URL-safe characters — the first 96 bits of HMAC-SHA-256, under a key derived from the store
//! key, of the tenant, the gateway and the verifier id. A caller's id is read only if its tag
//! is the one its own tenant would get (compared in constant time): another tenant's id, a
//! forged one and an unknown one all answer the same 404, before the store is asked. Every
//! replica derives the same key from the same store key, so any of them reads any id; a new
//! store key renames every id (as it renames every Redis key).
//!
//! The verifier's idempotency keys live in one space for the whole store, so each caller's
//! `Idempotency-Key` is scoped to its tenant the same way: the key the verifier sees is a keyed
//! hash of the tenant and the caller's key. Two tenants using the same key never meet.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use otp::verifier::VerificationId;
use otp::Gateway;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Bytes of the tag kept: 96 bits, more than any guessing at HTTP speed can cover.
const TAG_BYTES: usize = 12;

/// The keys ids and idempotency keys are derived under. `Debug` shows nothing.
#[derive(Clone)]
pub(crate) struct Tags {
    tag_key: Zeroizing<[u8; 32]>,
    idempotency_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tags([redacted])")
    }
}

#[allow(clippy::expect_used)] // See the message: it holds by construction.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC-SHA-256 takes a key of any length")
}

fn derive(store_key: &[u8], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut mac = keyed(store_key);
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Feeds `part` with its length first, so that no two different lists of parts hash alike.
fn update(mac: &mut Hmac<Sha256>, part: &[u8]) {
    mac.update(&(part.len() as u64).to_be_bytes());
    mac.update(part);
}

impl Tags {
    /// Derived from the store key (labels of their own: the store derives its keys with others).
    pub(crate) fn new(store_key: &[u8]) -> Self {
        Self {
            tag_key: derive(store_key, b"otp-serve tenant tag v1"),
            idempotency_key: derive(store_key, b"otp-serve idempotency scope v1"),
        }
    }

    fn tag(&self, tenant: &str, gateway: Gateway, id: &VerificationId) -> [u8; TAG_BYTES] {
        let mut mac = keyed(&*self.tag_key);
        update(&mut mac, tenant.as_bytes());
        update(&mut mac, gateway.as_str().as_bytes());
        update(&mut mac, id.as_str().as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    /// The id `tenant` is given for a verification.
    pub(crate) fn public_id(&self, tenant: &str, gateway: Gateway, id: &VerificationId) -> String {
        let tag = URL_SAFE_NO_PAD.encode(self.tag(tenant, gateway, id));
        format!("{}.{}.{tag}", id.as_str(), gateway.as_str())
    }

    /// The verification `text` names, if it is an id given to `tenant`; `None` for anything
    /// else (malformed, another tenant's, forged), which callers answer as "not found".
    pub(crate) fn read(&self, tenant: &str, text: &str) -> Option<(Gateway, VerificationId)> {
        let mut parts = text.split('.');
        let (id, gateway, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let gateway = Gateway::ALL.into_iter().find(|g| g.as_str() == gateway)?;
        let id = VerificationId::parse(id).ok()?;
        let given = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let expected = self.tag(tenant, gateway, &id);
        // Only the canonical spelling, and the tag compared in constant time.
        let matches = given.len() == TAG_BYTES
            && URL_SAFE_NO_PAD.encode(&given) == tag
            && bool::from(given.as_slice().ct_eq(expected.as_slice()));
        matches.then_some((gateway, id))
    }

    /// The idempotency key the verifier is given for `tenant`'s `key` (the caller's key is
    /// checked by the verifier's rules first): 43 URL-safe characters.
    pub(crate) fn idempotency_key(&self, tenant: &str, key: &str) -> String {
        let mut mac = keyed(&*self.idempotency_key);
        update(&mut mac, tenant.as_bytes());
        update(&mut mac, key.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn id() -> VerificationId {
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8 * 7);
        VerificationId::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap()
    }

    #[test]
    fn an_id_reads_back_for_its_tenant_only() {
        let tags = Tags::new(&[7u8; 32]);
        let gateway = Gateway::ALL[0];
        let public = tags.public_id("checkout", gateway, &id());
        assert_eq!(public.len(), 22 + 1 + gateway.as_str().len() + 1 + 16);
        assert_eq!(tags.read("checkout", &public), Some((gateway, id())));
        assert_eq!(tags.read("payouts", &public), None, "another tenant's");
        assert_eq!(Tags::new(&[8u8; 32]).read("checkout", &public), None, "another store key");
        // The tenant, the gateway and the id are each bound: changing any is "not found".
        for other in Gateway::ALL.into_iter().filter(|g| *g != gateway) {
            let moved = public.replacen(gateway.as_str(), other.as_str(), 1);
            assert_eq!(tags.read("checkout", &moved), None, "{other}");
        }
        let mut flipped = public.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(tags.read("checkout", &String::from_utf8(flipped).unwrap()), None);
        for bad in ["", "x", "a.b.c", &format!("{public}.x"), &public[..public.len() - 1], &public.to_uppercase()] {
            assert_eq!(tags.read("checkout", bad), None, "{bad}");
        }
        // Length-prefixed parts: "ab" + "c" and "a" + "bc" are different tenants' ids.
        assert_ne!(tags.public_id("ab", gateway, &id()), tags.public_id("a", gateway, &id()));
    }

    #[test]
    fn idempotency_keys_are_scoped_to_their_tenant() {
        let tags = Tags::new(&[7u8; 32]);
        let a = tags.idempotency_key("checkout", "order-42");
        assert_eq!(a, tags.idempotency_key("checkout", "order-42"));
        assert_ne!(a, tags.idempotency_key("payouts", "order-42"));
        assert_ne!(a, tags.idempotency_key("checkout", "order-43"));
        assert_eq!(a.len(), 43);
        assert!(!a.contains("order"));
        assert_eq!(format!("{tags:?}"), "Tags([redacted])");
    }
}
