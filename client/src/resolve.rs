//! Names to ids: `--connection` and `--model` take a name (exact match) or an id, looked up in the lists the
//! API gives.

use crate::api::{Api, Connection, Model};
use crate::error::{ClientError, Result};

/// The id of the connection named (or with the id) `wanted`.
pub async fn connection(api: &Api, wanted: &str) -> Result<String> {
    let (_, connections) = api.connections().await?;
    pick(&connections, wanted, "connection", |c: &Connection| [c.name.as_str(), "", c.id.as_str()])
        .map(|c| c.id.clone())
}

/// The id of the model named (or with the id, or else with the provider model name) `wanted`.
pub async fn model(api: &Api, wanted: &str) -> Result<String> {
    let (_, models) = api.models().await?;
    pick(&models, wanted, "model", |m: &Model| [m.name.as_str(), m.model_id.as_str(), m.id.as_str()])
        .map(|m| m.id.clone())
}

/// The one item whose name is `wanted`, else the one with that id, else the one with that alternative name
/// (`keys` gives `[name, alternative, id]`; an empty alternative never matches).
pub fn pick<'a, T>(items: &'a [T], wanted: &str, kind: &str, keys: impl Fn(&T) -> [&str; 3]) -> Result<&'a T> {
    let wanted = wanted.trim();
    let by = |slot: usize| -> Vec<&'a T> {
        items
            .iter()
            .filter(|item| {
                let key = keys(item)[slot];
                !key.is_empty() && key == wanted
            })
            .collect()
    };
    for slot in [0, 2, 1] {
        let found = by(slot);
        match found.as_slice() {
            [] => continue,
            [one] => return Ok(one),
            many => {
                let ids: Vec<&str> = many.iter().map(|item| keys(item)[2]).collect();
                return Err(ClientError::Usage(format!(
                    "{} {kind}s match {wanted:?}: give the id instead ({})",
                    many.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    Err(ClientError::Usage(format!("no {kind} is named {wanted:?} or has that id: querygpt {kind}s lists them")))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Item = (&'static str, &'static str, &'static str);

    fn keys(item: &Item) -> [&str; 3] {
        [item.0, item.1, item.2]
    }

    #[test]
    fn names_win_over_ids_and_ambiguity_is_an_error() {
        let items = [("sales", "gpt-4o", "id-1"), ("id-1", "", "id-2"), ("dup", "", "id-3"), ("dup", "x", "id-4")];
        assert_eq!(pick(&items, "sales", "model", keys).unwrap().2, "id-1");
        assert_eq!(pick(&items, "id-1", "model", keys).unwrap().2, "id-2", "an exact name first");
        assert_eq!(pick(&items, "id-4", "model", keys).unwrap().2, "id-4");
        assert_eq!(pick(&items, "gpt-4o", "model", keys).unwrap().2, "id-1", "then the provider's name");
        let err = pick(&items, "dup", "connection", keys).unwrap_err().to_string();
        assert!(err.contains("2 connections match") && err.contains("id-3, id-4"), "{err}");
        let err = pick(&items, "nope", "connection", keys).unwrap_err().to_string();
        assert!(err.contains("querygpt connections"), "{err}");
    }
}
