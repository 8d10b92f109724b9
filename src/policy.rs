//! The values the warnings compare against, as settings with defaults, checked once.
//!
//! [`Settings`] is what a user can change (flags of `replay`, later of `serve`); [`Policy`] is
//! the checked form the engine runs with. Nothing in the rules spells a registry name.

use std::sync::Arc;

use crate::context::ClusterContext;
use crate::grammar::host::is_host_port;
use crate::grammar::scope::is_valid_scope;

/// The registries the release payload and the operators are pulled from.
pub const DEFAULT_RELEASE_REGISTRIES: [&str; 2] = ["quay.io", "registry.redhat.io"];
pub use crate::node::DEFAULT_PAYLOAD_REPOSITORY;
/// The internal registry, unless `status.internalRegistryHostname` says otherwise.
pub const DEFAULT_INTERNAL_REGISTRY: &str = "image-registry.openshift-image-registry.svc:5000";
/// Public registries that should not resolve short names (W6).
pub const DEFAULT_PUBLIC_SEARCH_REGISTRIES: [&str; 3] = ["docker.io", "index.docker.io", "quay.io"];
/// The name of the webhook in the ValidatingWebhookConfiguration, used in denial messages.
pub const DEFAULT_WEBHOOK_NAME: &str = "image-config-webhook.openshift.io";

/// User-facing settings, before checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Registries that `allowedRegistries` must cover (W1), that must not be blocked (W3) and
    /// that `allowedRegistriesForImport` must admit on port 443 (W15).
    /// Default: `quay.io`, `registry.redhat.io`.
    pub release_registries: Vec<String>,
    /// P: the repository of the release image (`ClusterVersion.status.desired.image`), which
    /// the machine-config operator's payload exception protects (blocked entries covering it
    /// are dropped), and whose namespace holds the payload's component images (W3). `None`: no
    /// exception. Derive it from the release image with [`Settings::from_release_image`].
    /// Default: [`DEFAULT_PAYLOAD_REPOSITORY`].
    pub payload_repository: Option<String>,
    /// The internal registry, when the object's status does not name one (W2, W3, imports).
    /// Default: `image-registry.openshift-image-registry.svc:5000`.
    pub internal_registry: String,
    /// Registries that should not be short-name search registries (W6).
    /// Default: `docker.io`, `index.docker.io`, `quay.io`.
    pub public_search_registries: Vec<String>,
    /// The webhook's name as the API server prints it in denials.
    /// Default: `image-config-webhook.openshift.io`.
    pub webhook_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            release_registries: DEFAULT_RELEASE_REGISTRIES.map(String::from).to_vec(),
            payload_repository: Some(DEFAULT_PAYLOAD_REPOSITORY.to_owned()),
            internal_registry: DEFAULT_INTERNAL_REGISTRY.to_owned(),
            public_search_registries: DEFAULT_PUBLIC_SEARCH_REGISTRIES.map(String::from).to_vec(),
            webhook_name: DEFAULT_WEBHOOK_NAME.to_owned(),
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A registry or repository that is not a valid registry scope.
    InvalidScope {
        /// Which setting.
        setting: &'static str,
        /// The value.
        value: String,
    },
    /// A registry that is not `hostname[:port]`.
    InvalidHost {
        /// Which setting.
        setting: &'static str,
        /// The value.
        value: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::InvalidScope { setting, value } => write!(
                f,
                "{setting}: {value:?} is not a registry scope (host[:port][/path] without tag or digest)"
            ),
            ConfigError::InvalidHost { setting, value } => {
                write!(f, "{setting}: {value:?} is not a hostname[:port]")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checked settings, built once and shared by every evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    settings: Settings,
    /// The mirror sets and release image of the cluster, when known; shared, because the live
    /// watch swaps in a new policy per change while reviews keep the one they started with.
    context: Option<Arc<ClusterContext>>,
}

impl Policy {
    /// Checks the settings.
    pub fn new(settings: Settings) -> Result<Self, ConfigError> {
        let repositories = settings
            .release_registries
            .iter()
            .map(|v| ("release registries", v));
        let payload = settings
            .payload_repository
            .iter()
            .map(|v| ("release payload repository", v));
        if let Some((setting, bad)) = repositories
            .chain(payload)
            .find(|(_, v)| !is_valid_scope(v) || v.starts_with('*'))
        {
            return Err(ConfigError::InvalidScope {
                setting,
                value: bad.clone(),
            });
        }
        for (setting, value) in std::iter::once(("internal registry", &settings.internal_registry))
            .chain(
                settings
                    .public_search_registries
                    .iter()
                    .map(|v| ("public search registries", v)),
            )
        {
            if !is_host_port(value) {
                return Err(ConfigError::InvalidHost {
                    setting,
                    value: value.clone(),
                });
            }
        }
        Ok(Policy {
            settings,
            context: None,
        })
    }

    /// The same settings judging in this cluster context (`None`: without one).
    pub fn with_context(&self, context: Option<Arc<ClusterContext>>) -> Policy {
        Policy {
            settings: self.settings.clone(),
            context,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The cluster context, when one was given.
    pub fn context(&self) -> Option<&ClusterContext> {
        self.context.as_deref()
    }
}

/// The namespace of a payload repository P, where the payload's component images live beside
/// the release image (`quay.io/openshift-release-dev` for
/// `quay.io/openshift-release-dev/ocp-release`); P itself when it has no namespace.
pub fn payload_namespace(payload_repository: &str) -> &str {
    match payload_repository.rsplit_once('/') {
        Some((parent, _)) if parent.contains('/') => parent,
        _ => payload_repository,
    }
}

impl Settings {
    /// The default settings with P derived from a release image reference the way MCO
    /// `getPayloadRepo` does ([`crate::node::payload_repository`]): a reference MCO cannot parse
    /// is its render error.
    pub fn from_release_image(
        release_image: &str,
        internal_registry: impl Into<String>,
    ) -> Result<Self, crate::node::RenderError> {
        Ok(Settings {
            payload_repository: Some(crate::node::payload_repository(release_image)?),
            internal_registry: internal_registry.into(),
            ..Settings::default()
        })
    }

    /// [`Policy::new`]'s checks, without keeping the policy.
    pub fn check(&self) -> Result<(), ConfigError> {
        Policy::new(self.clone()).map(drop)
    }

    /// The namespace of the payload repository (`quay.io/openshift-release-dev` for
    /// `quay.io/openshift-release-dev/ocp-release`), where the payload's component images live
    /// beside the release image; P itself when it has no namespace.
    pub fn payload_namespace(&self) -> Option<&str> {
        self.payload_repository.as_deref().map(payload_namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Policy::new(Settings::default()), Ok(Policy::default()));
    }

    #[test]
    fn bad_settings_are_refused_with_the_value() {
        let mut s = Settings::default();
        s.release_registries.push("quay.io/x:tag".into());
        let err = Policy::new(s).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "release registries: \"quay.io/x:tag\" is not a registry scope (host[:port][/path] without tag or digest)"
            )
        );
        let s = Settings {
            internal_registry: "https://x".into(),
            ..Settings::default()
        };
        assert_eq!(
            Policy::new(s).err().map(|e| e.to_string()).as_deref(),
            Some("internal registry: \"https://x\" is not a hostname[:port]")
        );
    }
}
