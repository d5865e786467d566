//! What the server records about its calls, and what it withholds from its clients.
//!
//! Every tool call, from MCP, REST or an agent run, goes through
//! [`Registry::call`](crate::registry::Registry::call), which applies the [`guard::Guards`]:
//! the per-tool rate limit ([`limit`]), secret scrubbing ([`scrub`]), error masking and the
//! output cap; writes one audit line ([`audit`]); and counts the call in the Prometheus
//! [`metrics`] served on `/metrics`. With `spec.telemetry`, requests and tool calls are also
//! traced ([`telemetry`]).

pub mod audit;
pub mod guard;
pub mod limit;
pub mod metrics;
pub mod scrub;
pub mod telemetry;

pub use audit::{Outcome, PROMPTS_GET, RESOURCES_READ, TOOLS_CALL};
pub use guard::{CallPolicy, Guards};
pub use metrics::Metrics;
pub use scrub::Scrubber;
