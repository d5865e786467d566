//! The Secret values agents and notifications need, read from the desired state (the
//! server's credentials Secret in a cluster, the folder's Secrets standalone).

use linkmcp_api::Agent;
use linkmcp_api::common::SecretKeyRef;
use linkmcp_api::names::credentials_key;
use linkmcp_factory::SecretSource;

use crate::source::StateReceiver;

/// Secrets as the latest desired state has them.
pub struct StateSecrets {
    state: StateReceiver,
}

impl StateSecrets {
    /// Secrets following `state`.
    pub fn new(state: StateReceiver) -> Self {
        Self { state }
    }
}

impl SecretSource for StateSecrets {
    fn agent_api_key(&self, agent: &Agent) -> Option<String> {
        let name = agent.metadata.name.as_deref()?;
        self.state
            .borrow()
            .agent_api_keys
            .get(name)
            .map(str::to_owned)
    }

    fn secret_value(&self, secret_ref: &SecretKeyRef) -> Option<String> {
        let key = credentials_key::secret_ref(&secret_ref.name, &secret_ref.key);
        self.state
            .borrow()
            .notification_secrets
            .get(&key)
            .map(str::to_owned)
    }
}
