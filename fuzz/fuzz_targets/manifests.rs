//! A manifests folder holding one arbitrary file, read the way `linkmcp-server --manifests`
//! reads it and applied to a registry the way the server applies it: parsed, the McpServer
//! chosen, Secrets resolved, every link's toolset built and registered. Whatever the file
//! says, loading ends in a state or an error a person can read, and applying never panics.

#![no_main]

use std::{path::PathBuf, sync::Arc};

use libfuzzer_sys::fuzz_target;
use linkmcp_server::{
    links::{LinkStatuses, LinkSync, default_builder},
    registry::Registry,
    source::manifests::ManifestSource,
};

/// This process's folder: one file, rewritten for every input.
fn folder() -> &'static PathBuf {
    static FOLDER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("linkmcp-fuzz-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the manifests folder");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = folder();
    std::fs::write(dir.join("input.yaml"), data).expect("writing the manifest");
    match ManifestSource::new(dir.clone(), None).load() {
        Err(err) => assert!(!err.to_string().trim().is_empty(), "an error without a message"),
        Ok(state) => {
            let registry = Arc::new(Registry::new());
            let statuses = Arc::new(LinkStatuses::default());
            LinkSync::new(registry, default_builder(), statuses.clone()).apply(&state);
            for (name, status) in statuses.get() {
                assert!(
                    status.ready || status.message.as_deref().is_some_and(|m| !m.is_empty()),
                    "link {name} is not served and its status does not say why"
                );
            }
        }
    }
});
