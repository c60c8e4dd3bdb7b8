//! The read of the generated stores that asking a question makes: settings, conversation, model and connection in
//! one statement ([`crate::sql::QUESTION_CONTEXT`]), so an API node spends one round trip on them instead of three.

/// Generates `read_question_context`, in a module of its own, for `$store` on the pool of `$db`.
macro_rules! question_context_impl {
    ($store:ident, $db:ty) => {
        mod question {
            use super::$store;
            use crate::rows::{ConnectionRow, ModelRow, SealedRow, UserSettingsRow};
            use crate::{QuestionContext, QuestionRefs, StoreError, UserSettings, sql};
            use sqlx::Row;
            use uuid::Uuid;

            impl $store {
                pub(super) async fn read_question_context(
                    &self,
                    user_id: Uuid,
                    refs: QuestionRefs,
                ) -> Result<QuestionContext, StoreError> {
                    let row = sqlx::query(sql::QUESTION_CONTEXT)
                        .bind(user_id)
                        .bind(refs.model)
                        .bind(refs.connection)
                        .bind(refs.conversation)
                        .fetch_optional(&mut *self.conn().await?)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))?;
                    // `prompts` is NOT NULL in a settings row: NULL means the user never saved settings.
                    let settings = match row.try_get("prompts")? {
                        None => UserSettings::default(),
                        Some(prompts) => UserSettingsRow {
                            language: row.try_get("language")?,
                            theme: row.try_get("theme")?,
                            view_mode: row.try_get("view_mode")?,
                            context_rounds: row.try_get("context_rounds")?,
                            prompts,
                        }
                        .into_record()?,
                    };
                    let model = match row.try_get::<Option<Uuid>, _>("m_id")? {
                        None => None,
                        Some(id) => Some(
                            ModelRow {
                                id,
                                user_id: row.try_get("m_user_id")?,
                                name: row.try_get("m_name")?,
                                provider: row.try_get("m_provider")?,
                                model_id: row.try_get("m_model_id")?,
                                base_url: row.try_get("m_base_url")?,
                                api_key_enc: row.try_get("m_api_key_enc")?,
                                is_default: row.try_get("m_is_default")?,
                                is_available: row.try_get("m_is_available")?,
                                context_window: row.try_get("m_context_window")?,
                                created_at: row.try_get("m_created_at")?,
                                updated_at: row.try_get("m_updated_at")?,
                            }
                            .into_record(&self.secrets)?,
                        ),
                    };
                    let connection = match row.try_get::<Option<Uuid>, _>("c_id")? {
                        None => None,
                        Some(id) => Some(
                            ConnectionRow {
                                id,
                                user_id: row.try_get("c_user_id")?,
                                name: row.try_get("c_name")?,
                                driver: row.try_get("c_driver")?,
                                host: row.try_get("c_host")?,
                                port: row.try_get("c_port")?,
                                username: row.try_get("c_username")?,
                                password_enc: row.try_get("c_password_enc")?,
                                database_name: row.try_get("c_database_name")?,
                                is_default: row.try_get("c_is_default")?,
                                is_connected: row.try_get("c_is_connected")?,
                                created_at: row.try_get("c_created_at")?,
                                updated_at: row.try_get("c_updated_at")?,
                            }
                            .into_record(&self.secrets)?,
                        ),
                    };
                    Ok(QuestionContext { settings, conversation: row.try_get("conversation_id")?, model, connection })
                }
            }
        }
    };
}

pub(crate) use question_context_impl;
