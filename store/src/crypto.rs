//! AES-256-GCM encryption of stored secrets (model API keys, connection passwords).
//!
//! A stored secret is the text `v1:<key_id>:<base64(nonce || ciphertext)>` with a random 96-bit nonce. The key id
//! lets a deployment rotate keys: the box encrypts with its current key and decrypts with any key it holds by id.
//! Every ciphertext is bound to its place by associated data (see [`SecretBox::aad`]), so a value copied into another
//! row or column fails to decrypt instead of leaking one user's secret into another user's row.

use crate::StoreError;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use querygpt_common::config::SecretString;
use rand::RngCore;
use rand::rngs::OsRng;
use std::fmt;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

/// Version tag of the stored format.
const FORMAT: &str = "v1";
/// Key id given to the key file of the embedded mode.
pub const LOCAL_KEY_ID: &str = "local";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Why a key or a secret could not be used. The message says what failed; the underlying error, where there is
/// one (file IO, base64, UTF-8), is the `source`, so logs that print the chain can tell causes apart.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CryptoError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CryptoError {
    fn caused(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        CryptoError { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// A failure without an underlying error (a malformed value, a wrong key).
impl From<String> for CryptoError {
    fn from(message: String) -> Self {
        CryptoError { message, source: None }
    }
}

impl From<&str> for CryptoError {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

const UNDECRYPTABLE: &str = "cannot decrypt a stored secret";

/// A stored value that cannot be decrypted for a reason without an underlying error.
fn undecryptable(reason: &str) -> CryptoError {
    format!("{UNDECRYPTABLE}: {reason}").into()
}

/// Encrypts and decrypts stored secrets. Cheap to clone; `Debug` shows key ids only.
#[derive(Clone)]
pub struct SecretBox {
    current: KeyEntry,
    /// Retired keys, kept to decrypt what they encrypted until it is rewritten.
    previous: Vec<KeyEntry>,
}

#[derive(Clone)]
struct KeyEntry {
    id: String,
    cipher: Aes256Gcm,
}

impl KeyEntry {
    fn from_base64(id: &str, b64: &str) -> Result<Self, StoreError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(StoreError::Crypto(
                format!("invalid key id `{id}` (expected letters, digits, `-` or `_`)").into(),
            ));
        }
        let bytes =
            B64.decode(b64.trim()).map_err(|e| CryptoError::caused(format!("key `{id}` is not valid base64"), e))?;
        if bytes.len() != KEY_LEN {
            return Err(StoreError::Crypto(format!("key `{id}` must be {KEY_LEN} bytes, got {}", bytes.len()).into()));
        }
        Ok(KeyEntry { id: id.to_owned(), cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)) })
    }
}

impl SecretBox {
    /// A box whose current key is the base64 of 32 bytes, known by `key_id` (letters, digits, `-`, `_`).
    pub fn from_base64(key_id: &str, b64: &str) -> Result<Self, StoreError> {
        Ok(SecretBox { current: KeyEntry::from_base64(key_id, b64)?, previous: Vec::new() })
    }

    /// Adds a retired key that still decrypts the values it encrypted (key rotation).
    pub fn with_previous(mut self, key_id: &str, b64: &str) -> Result<Self, StoreError> {
        let entry = KeyEntry::from_base64(key_id, b64)?;
        if entry.id == self.current.id || self.previous.iter().any(|k| k.id == entry.id) {
            return Err(StoreError::Crypto(format!("key id `{key_id}` is given twice").into()));
        }
        self.previous.push(entry);
        Ok(self)
    }

    /// Reads the key file at `path` (base64 of 32 bytes), or creates it with a random key, readable by the owner
    /// only. For the embedded mode, whose key lives next to its data; the key id is [`LOCAL_KEY_ID`].
    /// Blocking file IO: call it at start-up, before or outside the async runtime's worker threads.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let io_err = |what: &str, e: std::io::Error| CryptoError::caused(format!("{what} {}", path.display()), e);
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(LOCAL_KEY_ID, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create the directory of", e))?;
                }
                let mut key = [0u8; KEY_LEN];
                OsRng.fill_bytes(&mut key);
                let encoded = B64.encode(key);
                let mut options = std::fs::OpenOptions::new();
                // `create_new`: if another process wins the race, fail instead of overwriting its key.
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(|e| io_err("cannot create the key file", e))?;
                file.write_all(encoded.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_err("cannot write the key file", e))?;
                Self::from_base64(LOCAL_KEY_ID, &encoded)
            }
            Err(e) => Err(io_err("cannot read the key file", e).into()),
        }
    }

    /// Id of the key new values are encrypted with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Associated data binding a secret to its place: `<table>:<row id>:<column>`.
    pub fn aad(table: &str, row: Uuid, column: &str) -> String {
        format!("{table}:{row}:{column}")
    }

    /// Encrypts `plaintext` with the current key, bound to `aad`.
    pub fn encrypt(&self, plaintext: &str, aad: &str) -> Result<String, StoreError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}:{}:{}", self.current.id, B64.encode(blob)))
    }

    /// Decrypts a value written by [`SecretBox::encrypt`] with the same `aad`, using the key its id names.
    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<SecretString, StoreError> {
        let mut parts = stored.splitn(3, ':');
        let (Some(FORMAT), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(undecryptable("unknown format").into());
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| undecryptable(&format!("no key with id `{key_id}`")))?;
        let blob = B64.decode(body).map_err(|e| CryptoError::caused(format!("{UNDECRYPTABLE}: invalid base64"), e))?;
        if blob.len() < NONCE_LEN {
            return Err(undecryptable("truncated value").into());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: aad.as_bytes() })
            // Deliberately vague: wrong key, wrong row and tampering are indistinguishable to AES-GCM.
            .map_err(|_| undecryptable(&format!("authentication failed for {aad}")))?;
        let plain = String::from_utf8(plain)
            .map_err(|e| CryptoError::caused(format!("{UNDECRYPTABLE}: plaintext is not UTF-8"), e))?;
        Ok(SecretString::new(plain))
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous.iter().map(|k| k.id.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn aad() -> String {
        SecretBox::aad("models", Uuid::nil(), "api_key_enc")
    }

    #[test]
    fn roundtrip() {
        let sb = SecretBox::from_base64("a", KEY_A).unwrap();
        let stored = sb.encrypt("sk-secret", &aad()).unwrap();
        assert!(stored.starts_with("v1:a:"), "{stored}");
        assert!(!stored.contains("sk-secret"));
        assert_eq!(sb.decrypt(&stored, &aad()).unwrap().expose(), "sk-secret");
        // A fresh nonce each time: equal secrets do not give equal ciphertexts.
        assert_ne!(stored, sb.encrypt("sk-secret", &aad()).unwrap());
    }

    #[test]
    fn wrong_aad_fails() {
        let sb = SecretBox::from_base64("a", KEY_A).unwrap();
        let stored = sb.encrypt("pw", &aad()).unwrap();
        let other_row = SecretBox::aad("models", Uuid::from_u128(1), "api_key_enc");
        assert!(matches!(sb.decrypt(&stored, &other_row), Err(StoreError::Crypto(_))));
    }

    #[test]
    fn tampered_fails() {
        let sb = SecretBox::from_base64("a", KEY_A).unwrap();
        let stored = sb.encrypt("pw", &aad()).unwrap();
        let (head, body) = stored.rsplit_once(':').unwrap();
        let mut blob = B64.decode(body).unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        let tampered = format!("{head}:{}", B64.encode(blob));
        assert!(matches!(sb.decrypt(&tampered, &aad()), Err(StoreError::Crypto(_))));
        assert!(sb.decrypt("v2:a:AAAA", &aad()).is_err());
        assert!(sb.decrypt("v1:a:AAAA", &aad()).is_err());
        assert!(sb.decrypt("plain text", &aad()).is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = SecretBox::from_base64("k1", KEY_A).unwrap();
        let stored_old = old.encrypt("old secret", &aad()).unwrap();
        let rotated = SecretBox::from_base64("k2", KEY_B).unwrap().with_previous("k1", KEY_A).unwrap();
        assert_eq!(rotated.key_id(), "k2");
        assert_eq!(rotated.decrypt(&stored_old, &aad()).unwrap().expose(), "old secret");
        let stored_new = rotated.encrypt("new secret", &aad()).unwrap();
        assert!(stored_new.starts_with("v1:k2:"));
        // The old box alone does not know k2.
        assert!(old.decrypt(&stored_new, &aad()).is_err());
        // Same bytes under another id must not be accepted silently either.
        assert!(SecretBox::from_base64("k3", KEY_B).unwrap().decrypt(&stored_new, &aad()).is_err());
        assert!(rotated.clone().with_previous("k2", KEY_A).is_err());
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(SecretBox::from_base64("a", "not base64!").is_err());
        assert!(SecretBox::from_base64("a", &B64.encode([0u8; 16])).is_err());
        assert!(SecretBox::from_base64("a:b", KEY_A).is_err());
        assert!(SecretBox::from_base64("", KEY_A).is_err());
    }

    #[test]
    fn debug_hides_keys() {
        let sb = SecretBox::from_base64("k2", KEY_B).unwrap().with_previous("k1", KEY_A).unwrap();
        let shown = format!("{sb:?}");
        assert!(shown.contains("k1") && shown.contains("k2"), "{shown}");
        assert!(!shown.contains(KEY_A) && !shown.contains(KEY_B) && !shown.contains("cipher"), "{shown}");
    }

    #[test]
    fn load_or_create_persists_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/secret.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(first.key_id(), LOCAL_KEY_ID);
        let stored = first.encrypt("x", &aad()).unwrap();
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.decrypt(&stored, &aad()).unwrap().expose(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err());
    }

    #[test]
    fn errors_keep_their_cause() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        // A directory where the key file should be: reading it fails with an IO error, kept as the source.
        let unreadable = SecretBox::load_or_create(dir.path()).unwrap_err();
        assert!(unreadable.to_string().starts_with("cannot read the key file"), "{unreadable}");
        assert!(unreadable.source().unwrap().downcast_ref::<std::io::Error>().is_some(), "{unreadable:?}");
        let not_base64 = SecretBox::from_base64("a", "not base64!").unwrap_err();
        assert!(not_base64.source().unwrap().downcast_ref::<base64::DecodeError>().is_some(), "{not_base64:?}");
        // AES-GCM tells nothing about why authentication failed: there is no cause to keep.
        let sb = SecretBox::from_base64("a", KEY_A).unwrap();
        let forged = format!("v1:a:{}", B64.encode([0u8; 40]));
        let failed = sb.decrypt(&forged, &aad()).unwrap_err();
        assert!(failed.to_string().starts_with("cannot decrypt a stored secret: authentication failed"), "{failed}");
        assert!(failed.source().is_none());
    }
}
