//! The grammars of the Image object, each in one place. Leaf functions here know nothing of
//! field paths: they answer yes/no or return messages, and the rules attach paths
//! (apimachinery's `IsDNS1123Label` habit).
//!
//! - [`scope`]: registry scopes of `registrySources` (R2), scope coverage
//!   (`ScopeIsNestedInsideScope`, used by W1-W5), the `policy.json` lookup order and the
//!   `registries.conf` longest-prefix match (used by `explain`).
//! - [`host`]: `hostname[:port]` (P1, P4, status hostnames), RFC 1123 subdomains (P5), and the
//!   port and label limits behind W12.
//! - [`import`]: `allowedRegistriesForImport` globs and the whitelister's verdict and error
//!   text (P2, W14-W16, `explain`).
//! - [`reference`]: image references as users write them, normalised as the container tools
//!   do (`explain`).
//! - [`hashed`]: the foldhash maps and sets keyed by request strings (the scope index, the node
//!   model, the repeat checks).

pub mod hashed;
pub mod host;
pub mod import;
pub mod reference;
pub mod scope;
