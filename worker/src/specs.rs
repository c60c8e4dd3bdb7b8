//! How stored models and connections become what the LLM client and the targets layer take. Jobs and worker
//! requests both go through here, so a model or a connection is reached the same way by both.

use querygpt_llm::LlmEndpoint;
use querygpt_store::{Connection, Model};
use querygpt_targets::TargetSpec;

/// Where and how to call `model`; a model without a base URL uses its provider's.
pub(crate) fn endpoint(model: &Model) -> LlmEndpoint {
    LlmEndpoint {
        provider: model.provider,
        base_url: model.base_url.clone().unwrap_or_else(|| model.provider.default_base_url().to_string()),
        api_key: model.api_key.clone(),
        model: model.model_id.clone(),
        context_window: model.context_window,
    }
}

/// Pool cache key of a connection's target.
pub(crate) fn target_key(connection: &Connection) -> String {
    connection.id.to_string()
}

pub(crate) fn target_spec(connection: &Connection) -> TargetSpec {
    TargetSpec {
        driver: connection.driver,
        host: connection.host.clone(),
        port: connection.port,
        username: connection.username.clone(),
        password: connection.password.clone(),
        database: connection.database.clone(),
    }
}
