//! image-config-webhook: a guard for the OpenShift `config.openshift.io/v1` `Image` object.
//!
//! Data flows one way, bytes in, bytes out; only the adapters touch files or sockets:
//!
//! ```text
//! AdmissionReview bytes -> envelope -> typed Image (+ type errors) -> rules -> findings
//!                       -> ratchet (UPDATE) -> Verdict -> response bytes
//!           ^                                                      |
//!     replay (files, stdin)     and     serve (TLS, HTTP)     are thin adapters
//! ```
//!
//! - [`field`]: apimachinery field paths and error text, byte for byte.
//! - [`grammar`]: registry scopes, `hostname[:port]`, RFC 1123, import globs.
//! - [`image`]: the typed object and its decoder (type errors become causes).
//! - [`rules`]: the rule table the engine runs and `rules` prints.
//! - [`engine`]: request -> verdict. [`review`]: bytes -> bytes.
//! - [`input`]: reading inputs (files, directories, stdin) into documents and Image configs, for
//!   `replay`, `explain` and the fuzz targets.
//! - [`replay`]: the offline checker behind `image-config-webhook replay`.
//! - [`context`]: the cluster around the Image (mirror sets, the release image), as values, read
//!   from files ([`context::load`]) or watched live ([`server::watch`]).
//! - [`node`]: the one model of what a node does with the Image: the registries.conf,
//!   policy.json and search drop-in the machine-config operator renders, and pull, import and
//!   short-name answers that name the deciding entry.
//! - [`explain`]: what a config does to real image references (pulls, imports, short names),
//!   behind `image-config-webhook explain`.
//! - [`server`]: the TLS webhook behind `image-config-webhook serve`.
//! - [`crypto`]: the one TLS crypto provider (aws-lc-rs; X25519MLKEM768 first) of every TLS config.

pub mod bounded;
pub mod certs;
pub mod context;
pub mod crypto;
pub mod engine;
pub mod envelope;
pub mod explain;
pub mod field;
pub mod grammar;
pub mod image;
pub mod input;
pub mod node;
pub mod policy;
pub mod remote;
pub mod replay;
pub mod review;
pub mod rules;
pub mod server;
pub mod wire;

pub use engine::{Verdict, evaluate};
pub use policy::{Policy, Settings};
pub use review::review;
