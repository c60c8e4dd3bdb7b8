//! Where a worker gets a connection's schema: for a job's prompt and for `GET /connections/{id}/schema` alike.

use crate::specs::{target_key, target_spec};
use querygpt_store::Connection;
use querygpt_targets::{DbSchema, TargetError, Targets};
use std::sync::Arc;

/// The one way to a connection's schema. Cheap to clone: clones share the targets' pools and caches.
#[derive(Clone)]
pub struct Schemas {
    targets: Arc<Targets>,
}

impl Schemas {
    pub fn new(targets: Arc<Targets>) -> Self {
        Schemas { targets }
    }

    /// The tables of `connection`'s database. A cached copy is reused unless `refresh`, which forgets the connection's
    /// pool and cached schema first and reads the catalog again.
    pub async fn get(&self, connection: &Connection, refresh: bool) -> Result<DbSchema, TargetError> {
        let key = target_key(connection);
        if refresh {
            self.targets.invalidate(&key);
        }
        self.targets.schema(&key, &target_spec(connection)).await
    }
}
