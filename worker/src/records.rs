//! The model and connection records of jobs, kept between jobs so that a question does not cost two store reads.
//!
//! A job names the `updated_at` of its model and connection as the API node read them
//! ([`RecordRevisions`](querygpt_common::messages::RecordRevisions)). A record kept here with that `updated_at` is
//! the configuration the question was asked with, so it is used as it is; a job that names another revision (the
//! record was edited) or none (an older API node) reads the store, and what it reads replaces the kept record. The
//! records hold decrypted secrets, as this process's target pools and LLM client already do; they never go on the
//! bus, and a record unused for [`KEEP_FOR`] is dropped.

use chrono::{DateTime, Utc};
use querygpt_store::{Connection, Model, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a kept record may go unused. It bounds how long a deleted record's secrets stay in memory.
const KEEP_FOR: Duration = Duration::from_secs(300);
/// Records kept per kind. Past this many the kept ones start over: a miss costs one store read.
const MAX_KEPT: usize = 4096;

/// A record of a user that has an `updated_at`.
trait Revised {
    fn user_id(&self) -> Uuid;
    fn updated_at(&self) -> DateTime<Utc>;
}

impl Revised for Model {
    fn user_id(&self) -> Uuid {
        self.user_id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

impl Revised for Connection {
    fn user_id(&self) -> Uuid {
        self.user_id
    }
    fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// Records of one kind by id, each with when it was last used.
struct Kept<T> {
    records: Mutex<HashMap<Uuid, (Arc<T>, Instant)>>,
}

impl<T: Revised> Kept<T> {
    fn new() -> Self {
        Kept { records: Mutex::new(HashMap::new()) }
    }

    /// The kept record `id` if it is `user_id`'s, of `revision` and was used within [`KEEP_FOR`].
    fn get(&self, user_id: Uuid, id: Uuid, revision: Option<DateTime<Utc>>) -> Option<Arc<T>> {
        let revision = revision?;
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let (record, used) = records.get_mut(&id)?;
        if record.user_id() != user_id || record.updated_at() != revision || used.elapsed() > KEEP_FOR {
            return None;
        }
        *used = Instant::now();
        Some(Arc::clone(record))
    }

    fn keep(&self, id: Uuid, record: Arc<T>) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= MAX_KEPT && !records.contains_key(&id) {
            records.retain(|_, (_, used)| used.elapsed() <= KEEP_FOR);
            if records.len() >= MAX_KEPT {
                records.clear();
            }
        }
        records.insert(id, (record, Instant::now()));
    }

    fn forget(&self, id: Uuid) {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    /// `user_id`'s record `id` of `revision`, kept or else read by `read` (which reads only the user's rows, and
    /// is kept). `None`: it no longer exists.
    async fn get_or_read<F, R>(
        &self,
        user_id: Uuid,
        id: Uuid,
        revision: Option<DateTime<Utc>>,
        read: R,
    ) -> Result<Option<Arc<T>>, StoreError>
    where
        R: FnOnce() -> F,
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        if let Some(kept) = self.get(user_id, id, revision) {
            return Ok(Some(kept));
        }
        match read().await? {
            Some(record) => {
                let record = Arc::new(record);
                self.keep(id, Arc::clone(&record));
                Ok(Some(record))
            }
            None => {
                self.forget(id);
                Ok(None)
            }
        }
    }
}

/// The models and connections of a worker's jobs, read from the store only when a job names a revision not kept.
pub struct Records {
    store: Arc<dyn Store>,
    models: Kept<Model>,
    connections: Kept<Connection>,
}

impl Records {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Records { store, models: Kept::new(), connections: Kept::new() }
    }

    /// `user_id`'s model `id` of `revision` (`None`: whatever the store holds); `None` when it no longer exists.
    pub async fn model(
        &self,
        user_id: Uuid,
        id: Uuid,
        revision: Option<DateTime<Utc>>,
    ) -> Result<Option<Arc<Model>>, StoreError> {
        self.models.get_or_read(user_id, id, revision, || self.store.model(user_id, id)).await
    }

    /// `user_id`'s connection `id` of `revision` (`None`: whatever the store holds); `None` when it no longer exists.
    pub async fn connection(
        &self,
        user_id: Uuid,
        id: Uuid,
        revision: Option<DateTime<Utc>>,
    ) -> Result<Option<Arc<Connection>>, StoreError> {
        self.connections.get_or_read(user_id, id, revision, || self.store.connection(user_id, id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user of every record in these tests.
    const USER: Uuid = Uuid::from_u128(1);

    struct Record {
        updated_at: DateTime<Utc>,
    }

    impl Revised for Record {
        fn user_id(&self) -> Uuid {
            USER
        }
        fn updated_at(&self) -> DateTime<Utc> {
            self.updated_at
        }
    }

    async fn read(
        kept: &Kept<Record>,
        id: Uuid,
        revision: Option<DateTime<Utc>>,
        stored: Option<DateTime<Utc>>,
    ) -> (Option<DateTime<Utc>>, bool) {
        let read = std::cell::Cell::new(false);
        let record = kept
            .get_or_read(USER, id, revision, || async {
                read.set(true);
                Ok(stored.map(|updated_at| Record { updated_at }))
            })
            .await
            .unwrap();
        (record.map(|r| r.updated_at), read.get())
    }

    #[tokio::test]
    async fn a_record_is_read_again_only_for_another_revision() {
        let kept = Kept::new();
        let (id, first, second) = (Uuid::now_v7(), Utc::now(), Utc::now() + chrono::Duration::seconds(1));
        assert_eq!(read(&kept, id, Some(first), Some(first)).await, (Some(first), true));
        assert_eq!(read(&kept, id, Some(first), Some(first)).await, (Some(first), false), "kept");
        assert_eq!(read(&kept, id, Some(second), Some(second)).await, (Some(second), true), "edited");
        assert_eq!(read(&kept, id, Some(second), Some(second)).await, (Some(second), false));
        assert_eq!(read(&kept, id, None, Some(second)).await, (Some(second), true), "no revision: the store");
    }

    #[tokio::test]
    async fn a_deleted_record_is_forgotten() {
        let kept = Kept::new();
        let (id, at) = (Uuid::now_v7(), Utc::now());
        read(&kept, id, Some(at), Some(at)).await;
        assert_eq!(read(&kept, id, None, None).await, (None, true));
        assert_eq!(read(&kept, id, Some(at), None).await, (None, true), "not kept any more");
    }

    #[tokio::test]
    async fn the_kept_records_are_bounded() {
        let kept = Kept::new();
        let at = Utc::now();
        for _ in 0..MAX_KEPT + 10 {
            read(&kept, Uuid::now_v7(), Some(at), Some(at)).await;
        }
        assert!(kept.records.lock().unwrap().len() <= MAX_KEPT);
    }
}
