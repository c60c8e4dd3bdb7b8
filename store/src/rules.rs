//! What the store decides the same way on every backend: when a test result stops applying, and which search
//! texts a trigram index can serve.

use crate::{Connection, Model, NewConnection, NewModel, SecretString};

fn same_secret(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
    a.as_ref().map(SecretString::expose) == b.as_ref().map(SecretString::expose)
}

/// Whether a model's last test result no longer applies after `new` replaces it: another endpoint or key.
pub fn model_needs_retest(old: &Model, new: &NewModel) -> bool {
    old.provider != new.provider
        || old.model_id != new.model_id
        || old.base_url != new.base_url
        || !same_secret(&old.api_key, &new.api_key)
}

/// Whether a connection's last test result no longer applies after `new` replaces it: another server, login or
/// database.
pub fn connection_needs_retest(old: &Connection, new: &NewConnection) -> bool {
    old.driver != new.driver
        || old.host != new.host
        || old.port != new.port
        || old.username != new.username
        || !same_secret(&old.password, &new.password)
        || old.database != new.database
}

/// Whether a search text is long enough for the trigram indexes (which index every 3 consecutive characters).
pub fn search_is_indexed(text: &str) -> bool {
    text.chars().nth(2).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_texts_of_three_characters_or_more_are_indexed() {
        for short in ["", "a", "ab", "销售", "%_"] {
            assert!(!search_is_indexed(short), "{short}");
        }
        for long in ["abc", "销售额", "a b", "revenue"] {
            assert!(search_is_indexed(long), "{long}");
        }
    }
}
