//! Methods of the generated stores for the tables of user-owned rows of which one per user is the default
//! (models, connections): who gets the flag, updating, deleting, and recording test results.

/// Generates the methods, in a module of their own, for `$store` on the pool of `$db`. They rely on the
/// store's `begin_write` and `lock_user`.
macro_rules! owned_rows_impl {
    ($store:ident, $db:ty) => {
        mod owned {
            use super::$store;
            use crate::backend::{now_micros, touched_one};
            use crate::rows::SealedRow;
            use crate::{StoreError, sql};
            use chrono::{DateTime, Utc};
            use uuid::Uuid;

            impl $store {
                /// Decides the `is_default` of a new row: what the caller asked, clearing the current default, or
                /// `true` anyway when the user has no default yet (its first row).
                pub(super) async fn claim_default(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    table: &sql::OwnedRows,
                    user_id: Uuid,
                    wanted: bool,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    if wanted {
                        sqlx::query(table.clear_default).bind(user_id).bind(now).execute(&mut **tx).await?;
                        return Ok(true);
                    }
                    let exists: bool = sqlx::query_scalar(table.has_default).bind(user_id).fetch_one(&mut **tx).await?;
                    Ok(!exists)
                }

                /// Moves the user's default flag to row `id`, inside `tx` whose caller has locked the user. `false`
                /// (and nothing changed once `tx` rolls back) if the row is not the user's.
                pub(super) async fn make_default(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    table: &sql::OwnedRows,
                    user_id: Uuid,
                    id: Uuid,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    // Cleared first: the one-default index is checked row by row, not at the end of a statement.
                    sqlx::query(table.clear_default).bind(user_id).bind(now).execute(&mut **tx).await?;
                    let set =
                        sqlx::query(table.set_default).bind(user_id).bind(id).bind(now).execute(&mut **tx).await?;
                    Ok(set.rows_affected() == 1)
                }

                /// Starts replacing row `id` of `table`: locks the user, reads the row as it is (`NotFound` if it is
                /// not the user's) and, if `make_default`, moves the default flag to it.
                pub(super) async fn begin_update<R>(
                    &self,
                    table: &sql::OwnedRows,
                    user_id: Uuid,
                    id: Uuid,
                    make_default: bool,
                    now: DateTime<Utc>,
                ) -> Result<(sqlx::Transaction<'static, $db>, R::Record), StoreError>
                where
                    R: SealedRow + for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
                {
                    let mut tx = self.begin_write().await?;
                    Self::lock_user(&mut tx, user_id).await?;
                    let old = sqlx::query_as::<_, R>(table.by_id)
                        .bind(user_id)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("{} {id}", table.what)))?
                        .into_record(&self.secrets)?;
                    if make_default {
                        // The row was just read under the user's lock: it is there to take the flag.
                        Self::make_default(&mut tx, table, user_id, id, now).await?;
                    }
                    Ok((tx, old))
                }

                /// Deletes row `id` of `table`; if it was the default, the user's newest remaining row takes over.
                pub(super) async fn delete_owned(
                    &self,
                    table: &sql::OwnedRows,
                    user_id: Uuid,
                    id: Uuid,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    // Locked so that a concurrent insert cannot decide against becoming the default on the strength
                    // of the row deleted here.
                    Self::lock_user(&mut tx, user_id).await?;
                    let was_default: Option<bool> =
                        sqlx::query_scalar(table.delete).bind(user_id).bind(id).fetch_optional(&mut *tx).await?;
                    match was_default {
                        None => return Err(StoreError::NotFound(format!("{} {id}", table.what))),
                        Some(true) => {
                            sqlx::query(table.promote_newest)
                                .bind(user_id)
                                .bind(now_micros())
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(false) => {}
                    }
                    tx.commit().await?;
                    Ok(())
                }

                /// Runs `statement` (`$1` user, `$2` row, `$3` flag) on one user-owned row.
                pub(super) async fn set_flag(
                    &self,
                    statement: &'static str,
                    what: &str,
                    user_id: Uuid,
                    id: Uuid,
                    flag: bool,
                ) -> Result<(), StoreError> {
                    let done = sqlx::query(statement)
                        .bind(user_id)
                        .bind(id)
                        .bind(flag)
                        .execute(&mut *self.conn().await?)
                        .await?;
                    touched_one(done.rows_affected(), what, id)
                }
            }
        }
    };
}
pub(crate) use owned_rows_impl;
