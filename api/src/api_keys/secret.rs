//! What an API key is made of, and how a presented key is checked.
//!
//! A key is `qgpt_` followed by 40 random base62 characters (about 238 bits). Its first 17 characters (the `qgpt_`
//! marker and 12 random ones) are its *prefix*: stored in clear, unique, and the way a presented key finds its
//! row. The whole key is stored only as HMAC-SHA-256 under a server-side key derived from the JWT secret, which
//! every API node shares. A fast keyed hash, not argon2: a key carries far more entropy than a password, and it
//! is checked on every request. The stored hash is compared in constant time.

use aws_lc_rs::hmac;
use rand::Rng;
use rand::distributions::Alphanumeric;

/// What every key starts with, so that a leaked key is recognisable (secret scanners, logs).
pub const KEY_MARKER: &str = "qgpt_";
/// Random characters after the marker.
const RANDOM_CHARS: usize = 40;
/// Random characters that belong to the prefix.
const PREFIX_RANDOM_CHARS: usize = 12;
/// Context of the derivation, so that the JWT secret's HMAC key is never used as is for another purpose.
const DERIVATION_LABEL: &[u8] = b"querygpt api-key hash v1";

/// A key as it is shown once to its creator.
pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub last4: String,
    pub hash: [u8; 32],
}

/// A presented key that has the shape of one of ours (it may still be unknown or revoked).
#[derive(Debug, Clone, Copy)]
pub struct PresentedKey<'a> {
    key: &'a str,
}

impl<'a> PresentedKey<'a> {
    /// `None` when the text cannot be a key of ours (so it may be a JWT instead).
    pub fn parse(text: &'a str) -> Option<Self> {
        let random = text.strip_prefix(KEY_MARKER)?;
        (random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then_some(PresentedKey { key: text })
    }

    /// The part that finds the key's row.
    pub fn prefix(&self) -> &'a str {
        &self.key[..KEY_MARKER.len() + PREFIX_RANDOM_CHARS]
    }
}

/// Makes and checks keys with the deployment's hash key. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeyHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for ApiKeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyHasher")
    }
}

impl ApiKeyHasher {
    /// The hasher of a deployment whose JWT secret is `secret`: every node with the same secret checks the same
    /// keys. Changing the secret invalidates every API key (and every token).
    pub fn from_secret(secret: &[u8]) -> Self {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), DERIVATION_LABEL);
        ApiKeyHasher { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// A fresh random key.
    pub fn generate(&self) -> NewKey {
        let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(RANDOM_CHARS).map(char::from).collect();
        let key = format!("{KEY_MARKER}{random}");
        let presented = PresentedKey { key: &key };
        let prefix = presented.prefix().to_owned();
        let last4 = key[key.len() - 4..].to_owned();
        let hash = self.hash(&key);
        NewKey { key, prefix, last4, hash }
    }

    fn hash(&self, key: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.key, key.as_bytes());
        tag.as_ref().try_into().expect("HMAC-SHA-256 tags are 32 bytes")
    }

    /// Whether `presented` is the key whose stored hash is `stored`, compared in constant time.
    pub fn matches(&self, presented: PresentedKey<'_>, stored: &[u8]) -> bool {
        hmac::verify(&self.key, presented.key.as_bytes(), stored).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret that is long enough for HS256";

    #[test]
    fn a_new_key_has_its_shape_and_matches_only_its_hash() {
        let hasher = ApiKeyHasher::from_secret(SECRET);
        let new = hasher.generate();
        assert_eq!(new.key.len(), KEY_MARKER.len() + RANDOM_CHARS);
        assert!(new.key.starts_with(&new.prefix) && new.key.ends_with(&new.last4));
        assert_eq!(new.prefix.len(), 17);
        let presented = PresentedKey::parse(&new.key).unwrap();
        assert_eq!(presented.prefix(), new.prefix);
        assert!(hasher.matches(presented, &new.hash));

        let other = hasher.generate();
        assert_ne!(other.key, new.key);
        assert!(!hasher.matches(PresentedKey::parse(&other.key).unwrap(), &new.hash));
        assert!(!hasher.matches(presented, &new.hash[..31]), "a truncated hash never matches");
        let elsewhere = ApiKeyHasher::from_secret(b"another deployment's secret, also long enough");
        assert!(!elsewhere.matches(presented, &new.hash), "the hash is keyed by the deployment's secret");
    }

    #[test]
    fn only_our_shape_parses() {
        let good = format!("{KEY_MARKER}{}", "a".repeat(RANDOM_CHARS));
        assert!(PresentedKey::parse(&good).is_some());
        for bad in [
            "".to_owned(),
            "eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned(),
            format!("{KEY_MARKER}{}", "a".repeat(RANDOM_CHARS - 1)),
            format!("{KEY_MARKER}{}", "a".repeat(RANDOM_CHARS + 1)),
            format!("{KEY_MARKER}{}-", "a".repeat(RANDOM_CHARS - 1)),
            format!("QGPT_{}", "a".repeat(RANDOM_CHARS)),
        ] {
            assert!(PresentedKey::parse(&bad).is_none(), "{bad}");
        }
    }
}
