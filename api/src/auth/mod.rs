//! Authentication: JWT access and refresh tokens, login sessions (rotation, reuse detection, logout), argon2id
//! password hashes, the [`AuthUser`] extractor and the `/auth/*` routes.

mod extract;
mod passwords;
mod routes;
mod sessions;
mod tokens;

pub use extract::AuthUser;
pub use passwords::{PasswordError, PasswordHasher};
pub(crate) use routes::routes;
pub use sessions::{SessionError, Sessions};
pub use tokens::{Claims, KeySetupError, TokenError, TokenKeys, TokenKind, TokenPair};
