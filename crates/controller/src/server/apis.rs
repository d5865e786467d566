//! Which optional APIs the cluster serves, from discovery, remembered for a minute.
//!
//! Only the kinds an McpServer asks for are looked up (one discovery request per kind, shared
//! by every McpServer), so a cluster without the Prometheus Operator or the Gateway API costs
//! nothing until someone asks for a ServiceMonitor or an HTTPRoute — and then learns what to
//! install from the OptionalApiMissing condition. Installing it is noticed within a minute.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::Client;
use kube::core::GroupVersionKind;

use super::build::Kind;
use crate::error::{Error, is_not_found};

/// How long a discovery answer is trusted.
pub const TTL: Duration = Duration::from_secs(60);

/// Discovery answers by kind.
#[derive(Default)]
pub struct ApiCache(Mutex<HashMap<Kind, (bool, Instant)>>);

impl ApiCache {
    /// The kinds of `kinds` whose API the cluster serves.
    pub async fn present(&self, client: &Client, kinds: &[Kind]) -> Result<BTreeSet<Kind>, Error> {
        let mut present = BTreeSet::new();
        for &kind in kinds {
            let cached = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&kind)
                .filter(|(_, at)| at.elapsed() < TTL)
                .map(|(served, _)| *served);
            let served = match cached {
                Some(served) => served,
                None => {
                    let served = discover(client, kind).await?;
                    self.0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(kind, (served, Instant::now()));
                    served
                }
            };
            if served {
                present.insert(kind);
            }
        }
        Ok(present)
    }
}

async fn discover(client: &Client, kind: Kind) -> Result<bool, Error> {
    let resource = kind.api_resource();
    let gvk = GroupVersionKind::gvk(&resource.group, &resource.version, &resource.kind);
    match kube::discovery::pinned_kind(client, &gvk).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Discovery(_)) => Ok(false),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(Error::kube(
            format!("discovering the {} API", resource.api_version),
            err,
        )),
    }
}
