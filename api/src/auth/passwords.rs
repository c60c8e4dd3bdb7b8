//! Argon2id password hashes with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! A hash takes tens of milliseconds of CPU and ~19 MiB, so it runs on the blocking pool, and a semaphore bounds
//! how many run at once: a burst of logins queues instead of starving the runtime or exhausting memory.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

/// Why hashing or verifying failed (never "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("argon2 failed: {0}")]
    Argon2(argon2::password_hash::Error),
    #[error("the stored password hash is malformed: {0}")]
    MalformedHash(argon2::password_hash::Error),
    #[error("the password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the password hasher is shut down")]
    Closed,
}

/// Hashes and verifies passwords off the async runtime. Cheap to clone; clones share the concurrency bound.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Hash verified when a login names an unknown e-mail, so that it costs the same as a wrong password.
    dummy_hash: Arc<OnceCell<String>>,
}

impl PasswordHasher {
    /// At most `max_concurrent` hashes run at once (0 is treated as 1).
    pub fn new(max_concurrent: usize) -> Self {
        PasswordHasher {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(OnceCell::new()),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password` with a random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2.hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(PasswordError::Argon2)
        })
        .await
    }

    /// Whether `password` matches the PHC string `hash` (whatever parameters it was made with).
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            let parsed = PasswordHash::new(&hash).map_err(PasswordError::MalformedHash)?;
            match argon2.verify_password(password.as_bytes(), &parsed) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::Password) => Ok(false),
                Err(err) => Err(PasswordError::Argon2(err)),
            }
        })
        .await
    }

    /// Spends one verification on a dummy hash: a login with an unknown e-mail takes as long as a wrong password,
    /// so response times do not tell which e-mails are registered.
    pub async fn waste_verification(&self, password: String) -> Result<(), PasswordError> {
        let dummy = self.dummy_hash.get_or_try_init(|| self.hash(uuid::Uuid::new_v4().to_string())).await?;
        self.verify(password, dummy.clone()).await.map(drop)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| PasswordError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn hashes_use_owasp_argon2id_parameters_and_verify() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse".into(), hash.clone()).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), hash.clone()).await.unwrap());
        let again = hasher.hash("correct horse".into()).await.unwrap();
        assert_ne!(hash, again, "salts are random");
    }

    #[tokio::test]
    async fn malformed_hashes_are_errors_not_mismatches() {
        let hasher = PasswordHasher::new(1);
        assert!(matches!(
            hasher.verify("x".into(), "not a phc string".into()).await,
            Err(PasswordError::MalformedHash(_))
        ));
    }

    #[tokio::test]
    async fn waste_verification_costs_a_real_verification() {
        let hasher = PasswordHasher::new(1);
        hasher.waste_verification("a".into()).await.unwrap();
        let dummy = hasher.dummy_hash.get().unwrap().clone();
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        hasher.waste_verification("b".into()).await.unwrap();
        assert_eq!(hasher.dummy_hash.get().unwrap(), &dummy, "the dummy hash is made once");
    }

    #[tokio::test]
    async fn concurrency_is_bounded_by_the_semaphore() {
        let hasher = PasswordHasher::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (hasher, running, peak) = (hasher.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    hasher
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(30));
                            running.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
