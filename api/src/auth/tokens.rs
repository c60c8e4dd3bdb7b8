//! HS256 JWTs. An access token (`typ: "access"`) authenticates requests; a refresh token (`typ: "refresh"`, longer
//! lived, with a `jti`) only buys a new pair at `/auth/refresh`. Each is refused where the other is expected.
//! Both carry the `sid` of the login session they belong to, which is what logout and reuse detection revoke
//! (`super::sessions`).
//!
//! Signatures are checked without any round trip: any API node holding the shared secret verifies them.

use crate::api_keys::ApiKeyHasher;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, get_current_timestamp};
use querygpt_common::config::Settings;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// `iss` of every token; a token signed with the same secret by another system is refused.
const ISSUER: &str = "querygpt";
/// HS256 keys shorter than the hash output weaken it (RFC 7518 section 3.2).
const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between the nodes that issue and verify a token.
pub(crate) const LEEWAY_SECS: u64 = 30;
/// File in `data_dir` holding the generated secret of the embedded mode.
const SECRET_FILE: &str = "jwt.secret";

/// Which of the two tokens a JWT is (its `typ` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        })
    }
}

/// The claims of both token kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub typ: TokenKind,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    /// The login session (one per login, kept by every refresh): logging out revokes it.
    pub sid: Uuid,
    /// Unique id of a refresh token: each one may be used once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
}

/// The token fields of the login, register and refresh responses.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    /// Malformed, forged (bad signature), wrong algorithm or issuer, or missing claims.
    #[error("the token is invalid")]
    Invalid,
    #[error("a {found} token cannot be used as an {expected} token")]
    WrongKind { expected: TokenKind, found: TokenKind },
    #[error("cannot sign a token: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Why the token keys cannot be set up at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeySetupError {
    #[error(
        "auth.jwt_secret (QUERYGPT_AUTH__JWT_SECRET) must be set when nats_url is set: every API node must share it"
    )]
    MissingInDistributedMode,
    #[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes long")]
    TooShort,
    #[error("auth.access_ttl_secs must be positive and auth.refresh_ttl_secs at least as long")]
    BadLifetimes,
    #[error("cannot read or create the JWT secret file {}: {source}", .path.display())]
    File { path: PathBuf, source: io::Error },
}

/// Signs and verifies tokens, and hashes API keys under a key derived from the same secret. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    api_keys: ApiKeyHasher,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl_secs: u64, refresh_ttl_secs: u64) -> Result<Self, KeySetupError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeySetupError::TooShort);
        }
        if access_ttl_secs == 0 || refresh_ttl_secs < access_ttl_secs {
            return Err(KeySetupError::BadLifetimes);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = LEEWAY_SECS;
        Ok(TokenKeys {
            api_keys: ApiKeyHasher::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl_secs,
            refresh_ttl_secs,
        })
    }

    /// Keys from the settings. The secret is `auth.jwt_secret`; when it is unset, the embedded mode generates one
    /// once into `data_dir/jwt.secret` (mode 0600) and reuses it on later starts, while the distributed mode
    /// refuses to start (API nodes with different secrets would reject each other's tokens).
    ///
    /// Blocking file I/O: call it at start-up, not from a request.
    pub fn from_settings(settings: &Settings) -> Result<Self, KeySetupError> {
        let auth = &settings.auth;
        let secret = match &auth.jwt_secret {
            Some(secret) if !secret.is_empty() => secret.expose().as_bytes().to_vec(),
            _ if !settings.is_embedded() => return Err(KeySetupError::MissingInDistributedMode),
            _ => load_or_create_secret(&settings.data_dir.join(SECRET_FILE))?,
        };
        Self::new(&secret, auth.access_ttl_secs, auth.refresh_ttl_secs)
    }

    /// Makes and checks the deployment's API keys.
    pub fn api_key_hasher(&self) -> &ApiKeyHasher {
        &self.api_keys
    }

    /// Lifetime of access tokens (`expires_in` of the responses).
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// Lifetime of refresh tokens: no token signed now is valid for longer (plus the clock-skew leeway).
    pub fn refresh_ttl_secs(&self) -> u64 {
        self.refresh_ttl_secs
    }

    /// A fresh access and refresh token for `user_id` in session `sid`.
    pub fn issue(&self, user_id: Uuid, sid: Uuid) -> Result<TokenPair, TokenError> {
        let now = get_current_timestamp();
        let claims =
            |typ, ttl, jti| Claims { sub: user_id, typ, iss: ISSUER.to_owned(), iat: now, exp: now + ttl, sid, jti };
        let access = claims(TokenKind::Access, self.access_ttl_secs, None);
        let refresh = claims(TokenKind::Refresh, self.refresh_ttl_secs, Some(Uuid::new_v4()));
        Ok(TokenPair {
            access_token: self.sign(&access)?,
            refresh_token: self.sign(&refresh)?,
            token_type: "bearer",
            expires_in: self.access_ttl_secs,
        })
    }

    /// Signs arbitrary claims (also how tests forge expired or mistyped tokens with the real key).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(TokenError::Signing)
    }

    /// Checks signature, algorithm, issuer and expiry, then that the token is of the `expected` kind.
    pub fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, TokenError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?
            .claims;
        if claims.typ != expected {
            return Err(TokenError::WrongKind { expected, found: claims.typ });
        }
        if expected == TokenKind::Refresh && claims.jti.is_none() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

/// Reads the secret file, or creates it with a random secret if it does not exist yet.
fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, KeySetupError> {
    let file_error = |source| KeySetupError::File { path: path.to_owned(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().as_bytes().to_vec()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(file_error(err)),
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes()).and_then(|()| file.sync_all()).map_err(file_error)?;
            tracing::info!(path = %path.display(), "generated a new JWT secret");
            Ok(secret.into_bytes())
        }
        // Another process created it between our read and our create: use theirs.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map(|text| text.trim().as_bytes().to_vec()).map_err(file_error)
        }
        Err(err) => Err(file_error(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_common::config::SecretString;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, 3600, 7200).unwrap()
    }

    #[test]
    fn issued_tokens_verify_as_their_own_kind_only() {
        let keys = keys();
        let user = Uuid::new_v4();
        let sid = Uuid::new_v4();
        let pair = keys.issue(user, sid).unwrap();
        assert_eq!(pair.expires_in, 3600);
        let access = keys.verify(&pair.access_token, TokenKind::Access).unwrap();
        assert_eq!((access.sub, access.sid, access.jti), (user, sid, None));
        let refresh = keys.verify(&pair.refresh_token, TokenKind::Refresh).unwrap();
        assert_eq!(refresh.sid, sid);
        assert!(refresh.jti.is_some());
        assert_eq!(refresh.exp - refresh.iat, 7200);
        assert!(matches!(
            keys.verify(&pair.refresh_token, TokenKind::Access),
            Err(TokenError::WrongKind { expected: TokenKind::Access, found: TokenKind::Refresh })
        ));
        assert!(matches!(keys.verify(&pair.access_token, TokenKind::Refresh), Err(TokenError::WrongKind { .. })));
    }

    #[test]
    fn expired_forged_and_foreign_tokens_are_refused() {
        let keys = keys();
        let now = get_current_timestamp();
        let old = Claims {
            sub: Uuid::new_v4(),
            typ: TokenKind::Access,
            iss: ISSUER.into(),
            iat: now - 7200,
            exp: now - 3600,
            sid: Uuid::new_v4(),
            jti: None,
        };
        assert!(matches!(keys.verify(&keys.sign(&old).unwrap(), TokenKind::Access), Err(TokenError::Expired)));

        let valid = Claims { iat: now, exp: now + 60, ..old.clone() };
        let other = TokenKeys::new(b"another secret that is long enough!!", 3600, 7200).unwrap();
        assert!(matches!(keys.verify(&other.sign(&valid).unwrap(), TokenKind::Access), Err(TokenError::Invalid)));

        let foreign = Claims { iss: "someone-else".into(), ..valid.clone() };
        assert!(matches!(keys.verify(&keys.sign(&foreign).unwrap(), TokenKind::Access), Err(TokenError::Invalid)));

        // Tampering with the payload breaks the signature.
        let token = keys.sign(&valid).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = keys.sign(&Claims { sub: Uuid::new_v4(), ..valid }).unwrap();
        parts[1] = forged_payload.split('.').nth(1).unwrap();
        assert!(matches!(keys.verify(&parts.join("."), TokenKind::Access), Err(TokenError::Invalid)));

        assert!(matches!(keys.verify("not.a.jwt", TokenKind::Access), Err(TokenError::Invalid)));
    }

    #[test]
    fn tokens_without_exp_or_with_alg_none_are_refused() {
        use base64::Engine;
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        let keys = keys();
        let claims =
            serde_json::json!({"sub": Uuid::new_v4(), "typ": "access", "iss": ISSUER, "iat": 0, "sid": Uuid::new_v4()});
        let no_exp = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(matches!(keys.verify(&no_exp, TokenKind::Access), Err(TokenError::Invalid)));

        let mut claims = claims;
        claims["exp"] = (get_current_timestamp() + 600).into();
        let unsigned = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&claims));
        assert!(matches!(keys.verify(&unsigned, TokenKind::Access), Err(TokenError::Invalid)));

        // Signed with the real key and otherwise valid, but without a session (an older token) or, for a refresh
        // token, without its one-time id.
        let mut no_sid = claims.clone();
        no_sid.as_object_mut().unwrap().remove("sid");
        let no_sid = encode(&Header::new(Algorithm::HS256), &no_sid, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(matches!(keys.verify(&no_sid, TokenKind::Access), Err(TokenError::Invalid)));
        let mut no_jti = claims;
        no_jti["typ"] = "refresh".into();
        let no_jti = encode(&Header::new(Algorithm::HS256), &no_jti, &EncodingKey::from_secret(SECRET)).unwrap();
        assert!(matches!(keys.verify(&no_jti, TokenKind::Refresh), Err(TokenError::Invalid)));
    }

    #[test]
    fn short_secrets_and_bad_lifetimes_are_refused() {
        assert!(matches!(TokenKeys::new(b"short", 10, 20), Err(KeySetupError::TooShort)));
        assert!(matches!(TokenKeys::new(SECRET, 0, 20), Err(KeySetupError::BadLifetimes)));
        assert!(matches!(TokenKeys::new(SECRET, 30, 20), Err(KeySetupError::BadLifetimes)));
    }

    #[test]
    fn embedded_mode_generates_the_secret_once() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings { data_dir: dir.path().join("nested"), ..Settings::default() };
        let first = TokenKeys::from_settings(&settings).unwrap();
        let path = settings.data_dir.join(SECRET_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let token = first.issue(Uuid::new_v4(), Uuid::new_v4()).unwrap().access_token;
        let second = TokenKeys::from_settings(&settings).unwrap();
        assert!(second.verify(&token, TokenKind::Access).is_ok(), "a restart keeps the secret");
    }

    #[test]
    fn distributed_mode_requires_a_configured_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            data_dir: dir.path().into(),
            nats_url: Some("nats://127.0.0.1:4222".into()),
            ..Settings::default()
        };
        assert!(matches!(TokenKeys::from_settings(&settings), Err(KeySetupError::MissingInDistributedMode)));
        assert!(!dir.path().join(SECRET_FILE).exists());

        settings.auth.jwt_secret = Some(SecretString::new("a shared secret of at least 32 bytes"));
        let a = TokenKeys::from_settings(&settings).unwrap();
        let b = TokenKeys::from_settings(&settings).unwrap();
        let token = a.issue(Uuid::new_v4(), Uuid::new_v4()).unwrap().access_token;
        assert!(b.verify(&token, TokenKind::Access).is_ok(), "nodes sharing the secret accept each other's tokens");
    }
}
