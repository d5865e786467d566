//! A link's resolved credentials: values a toolset uses to connect and that must never be shown.
//!
//! `Debug` prints only the credential names, so a credential cannot reach a log through a
//! `{:?}` of a struct that holds it; [`Credentials::values`] feeds the server's scrubber, which
//! removes known secret values from every outgoing text as a second line of defence.

use std::collections::BTreeMap;
use std::fmt;

/// Credentials by name (`username`, `password`, `token`, ...), as a link type reads them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, String>);

impl Credentials {
    /// Credentials from name/value pairs.
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self(values)
    }

    /// The credential `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The names of the credentials present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The secret values, for scrubbing outgoing text.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }

    /// Whether no credential is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_not_values() {
        let creds = Credentials::new(BTreeMap::from([(
            "password".to_owned(),
            "hunter2".to_owned(),
        )]));
        let shown = format!("{creds:?}");
        assert!(shown.contains("password"));
        assert!(!shown.contains("hunter2"));
    }
}
