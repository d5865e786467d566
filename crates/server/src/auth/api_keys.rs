//! API keys: the entries of the Secret `spec.auth.apiKeys` names, each one valid key.
//!
//! It exists to compare a presented key without revealing anything through timing. Keys are
//! kept only as SHA-256 digests; a presented token is digested once and compared with every
//! digest in constant time (`subtle`), with no early exit, so neither the length of a key, nor
//! how much of it matched, nor which key matched shows in the response time. Several keys are
//! valid at once so that one can be rotated: add the new entry, move clients, remove the old.

use sha2::{Digest as _, Sha256};
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

use linkmcp_toolsets::credentials::Credentials;

/// The valid keys, by id.
#[derive(Default)]
pub(crate) struct ApiKeys {
    keys: Vec<Key>,
}

struct Key {
    id: String,
    digest: [u8; 32],
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

impl ApiKeys {
    /// The keys of `secret` (key id -> key). Surrounding whitespace is dropped (a Secret made
    /// from a file often ends in a newline, which no header can carry); empty keys are skipped.
    pub(crate) fn new(secret: &Credentials) -> Self {
        let mut keys = Vec::new();
        for id in secret.names() {
            let value = secret.get(id).unwrap_or_default().trim();
            if value.is_empty() {
                tracing::warn!(key_id = id, "API key is empty and is not accepted");
                continue;
            }
            keys.push(Key {
                id: id.to_owned(),
                digest: digest(value),
            });
        }
        Self { keys }
    }

    /// Whether no key is configured.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, for logs.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The id of the key equal to `presented`, comparing with every key in constant time.
    pub(crate) fn find(&self, presented: &str) -> Option<&str> {
        let presented = digest(presented);
        // 1 + the index of the matching key, 0 for none; selected without branching.
        let mut found: u64 = 0;
        for (index, key) in (1u64..).zip(&self.keys) {
            let equal = presented.ct_eq(&key.digest);
            found = u64::conditional_select(&found, &index, equal);
        }
        let index = usize::try_from(found.checked_sub(1)?).ok()?;
        self.keys.get(index).map(|k| k.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> ApiKeys {
        ApiKeys::new(&Credentials::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ))
    }

    #[test]
    fn every_configured_key_is_valid_and_named_by_its_id() {
        let keys = keys(&[("old", "k-old-123"), ("new", "k-new-456")]);
        assert_eq!(keys.find("k-old-123"), Some("old"));
        assert_eq!(keys.find("k-new-456"), Some("new"));
        assert_eq!(keys.find("k-old-12"), None, "a prefix is not the key");
        assert_eq!(keys.find("k-old-1234"), None, "nor is a longer value");
        assert_eq!(keys.find(""), None);
    }

    #[test]
    fn whitespace_is_trimmed_and_empty_keys_are_skipped() {
        let keys = keys(&[("file", "k-file\n"), ("blank", "  ")]);
        assert_eq!(keys.find("k-file"), Some("file"));
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["file"]);
        assert_eq!(keys.find("  "), None);
        assert_eq!(keys.find(""), None);
    }

    #[test]
    fn no_keys_match_nothing() {
        let keys = ApiKeys::default();
        assert!(keys.is_empty());
        assert_eq!(keys.find("anything"), None);
    }
}
