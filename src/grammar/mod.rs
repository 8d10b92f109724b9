//! The grammars of the Image object, each in one place. Leaf functions here know nothing of
//! field paths: they answer yes/no or return messages, and the rules attach paths
//! (apimachinery's `IsDNS1123Label` habit).
//!
//! - [`scope`]: registry scopes of `registrySources` (R2) and scope coverage
//!   (`ScopeIsNestedInsideScope`, used by W1-W6).
//! - [`host`]: `hostname[:port]` (P1, P4, status hostnames), RFC 1123 subdomains (P5), and the
//!   port and label limits behind W12.
//! - [`import`]: `allowedRegistriesForImport` globs (P2, W14-W16).

pub mod host;
pub mod import;
pub mod scope;
