//! `serve --cluster-context`: the live cluster context, watched through the API server.
//!
//! Four watches, one a kind, each on its own so that one kind the API server does not serve
//! (404 on plain Kubernetes) or refuses (403) leaves the others working:
//! ImageDigestMirrorSets and ImageTagMirrorSets (`config.openshift.io/v1`),
//! ImageContentSourcePolicies (`operator.openshift.io/v1alpha1`) and the ClusterVersion named
//! `version` (`config.openshift.io/v1`). Each lists, then watches from the list's
//! resourceVersion (kube's watcher); a watch that ends is resumed from where it was; any error
//! drops the watch, and after a pause (0.5 s, doubling to 30 s, back to 0.5 s once listed) the
//! kind is listed anew, so that a recovery is always a complete, current list.
//!
//! On every change the context is rebuilt from the four stores and a new [`Policy`] is
//! published for the reviews that start after it ([`arc_swap::ArcSwap`]: a review loads the
//! current one without a lock and never waits for a watch). A kind that is not listed yet, or
//! not any more, counts with the objects last seen (none at first). Readiness does not depend
//! on any of it.
//!
//! What it says: one log line a state change of a kind (`synced`, `unavailable` with the
//! reason, `resumed`), not one a retry; the gauges `image_config_webhook_context_synced{kind}`
//! (1 while the kind's last list or watch succeeded) and
//! `image_config_webhook_context_objects{kind}`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};

use super::metrics::Metrics;
use crate::context::{ClusterContext, ContextObject};
use crate::policy::Policy;

/// Where the watch finds the API server and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiServer {
    /// As kube infers it: `KUBECONFIG` or `~/.kube/config` when present, else the pod's
    /// service account (in-cluster).
    Infer,
    /// This kubeconfig file, its current context.
    Kubeconfig(PathBuf),
}

/// One watched kind: how the API names it, and how its objects are selected.
struct Kind {
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    /// Only the ClusterVersion named `version` is context.
    field_selector: Option<&'static str>,
}

/// The four kinds, in the order of the stores.
const KINDS: [Kind; 4] = [
    Kind {
        kind: "ImageDigestMirrorSet",
        group: "config.openshift.io",
        version: "v1",
        plural: "imagedigestmirrorsets",
        field_selector: None,
    },
    Kind {
        kind: "ImageTagMirrorSet",
        group: "config.openshift.io",
        version: "v1",
        plural: "imagetagmirrorsets",
        field_selector: None,
    },
    Kind {
        kind: "ImageContentSourcePolicy",
        group: "operator.openshift.io",
        version: "v1alpha1",
        plural: "imagecontentsourcepolicies",
        field_selector: None,
    },
    Kind {
        kind: "ClusterVersion",
        group: "config.openshift.io",
        version: "v1",
        plural: "clusterversions",
        field_selector: Some("metadata.name=version"),
    },
];

/// The kinds the watch reads, as the metrics label them.
pub const KIND_NAMES: [&str; 4] = [KINDS[0].kind, KINDS[1].kind, KINDS[2].kind, KINDS[3].kind];

/// The first pause after an error before a kind is listed again; it doubles up to
/// [`MAX_RETRY`] while the errors go on.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest pause between two tries of a kind.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// A kind's state, for the one log line a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Not listed yet.
    Starting,
    /// Listed, and watched since.
    Synced,
    /// The last list or watch failed.
    Unavailable,
}

/// What the four watches share: the stores, and where the policy is published.
struct Shared {
    /// The policy without context: the settings every published policy carries.
    base: Policy,
    published: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
    stores: Mutex<Stores>,
}

/// The objects of each kind, and which kinds have been tried.
#[derive(Default)]
struct Stores {
    /// By kind (the order of [`KINDS`]), by name.
    objects: [BTreeMap<String, ContextObject>; 4],
    /// By kind: listed, or failed once. Nothing is published before every kind is: a context
    /// with the mirror sets but not yet the release image would judge with a guessed payload
    /// repository.
    settled: [bool; 4],
}

/// Watches the four kinds until dropped or aborted, publishing a new policy (`base` with the
/// current context) into `published` on every change. Never returns an error: a client that
/// cannot be built is logged once, and the webhook judges without cluster context.
pub async fn run(
    api_server: ApiServer,
    base: Policy,
    published: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
) {
    let client = match client(&api_server).await {
        Ok(client) => client,
        Err(reason) => {
            tracing::warn!(
                %reason,
                "cluster context: no API server to watch; judging without cluster context"
            );
            return;
        }
    };
    let shared = Shared {
        base,
        published,
        metrics,
        stores: Mutex::default(),
    };
    let watch = |i| watch_kind(client.clone(), i, &shared);
    tokio::join!(watch(0), watch(1), watch(2), watch(3));
}

/// A client for `api_server`; the reason in words when there is none.
async fn client(api_server: &ApiServer) -> Result<kube::Client, String> {
    let config = match api_server {
        ApiServer::Infer => kube::Config::infer().await.map_err(|e| e.to_string())?,
        ApiServer::Kubeconfig(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let options = kube::config::KubeConfigOptions::default();
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// Lists and watches one kind for ever: every error ends the watch, and after a pause the kind
/// is listed anew.
async fn watch_kind(client: kube::Client, i: usize, shared: &Shared) {
    let kind = &KINDS[i];
    let gvk = GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let mut config = watcher::Config::default();
    if let Some(selector) = kind.field_selector {
        config = config.fields(selector);
    }
    let mut health = Health::Starting;
    let mut pause = FIRST_RETRY;
    // Malformed objects already logged, so that a relist does not log them again.
    let mut warned = BTreeSet::new();
    loop {
        let mut events = std::pin::pin!(watcher::watcher(api.clone(), config.clone()));
        let mut listed = BTreeMap::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(object)) => {
                    listed.extend(decode(kind, object, &mut warned));
                }
                Ok(Event::InitDone) => {
                    let count = shared.update(i, |store| {
                        let changed = *store != listed;
                        *store = std::mem::take(&mut listed);
                        changed
                    });
                    health = synced(kind, health, count, &shared.metrics);
                    pause = FIRST_RETRY;
                }
                Ok(Event::Apply(object)) => {
                    let name = object.metadata.name.clone().unwrap_or_default();
                    // ClusterVersion's status changes often; only a change of what is context
                    // publishes a new policy.
                    shared.update(i, |store| match decode(kind, object, &mut warned) {
                        Some((name, object)) => store.insert(name, object.clone()) != Some(object),
                        None => store.remove(&name).is_some(),
                    });
                }
                Ok(Event::Delete(object)) => {
                    let name = object.metadata.name.unwrap_or_default();
                    shared.update(i, |store| store.remove(&name).is_some());
                }
                Err(e) => {
                    shared.update(i, |_| false);
                    health = unavailable(kind, health, &e, &shared.metrics);
                    if gone(&e) {
                        // A normal event: list again at once.
                        pause = Duration::ZERO;
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).clamp(FIRST_RETRY, MAX_RETRY);
    }
}

/// One object as context, keyed by name; `None` for one that is not context (a ClusterVersion
/// of another name) or is malformed (logged: the API server validated it, so this is a
/// schema this webhook does not know).
fn decode(
    kind: &Kind,
    object: DynamicObject,
    warned: &mut BTreeSet<String>,
) -> Option<(String, ContextObject)> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(&object).ok()?;
    // List items may come without their type; the watch knows it.
    if let Some(map) = value.as_object_mut() {
        let api_version = format!("{}/{}", kind.group, kind.version);
        map.insert("apiVersion".to_owned(), api_version.into());
        map.insert("kind".to_owned(), kind.kind.into());
    }
    match ContextObject::from_value(&value) {
        Ok(ContextObject::Other { .. }) => None,
        Ok(context) => {
            warned.remove(&name);
            Some((name, context))
        }
        Err(e) => {
            if warned.insert(name) {
                tracing::warn!(kind = kind.kind, error = %e, "cluster context: object ignored");
            }
            None
        }
    }
}

impl Shared {
    /// Changes one kind's store (`change` says whether it changed anything) and marks the kind
    /// settled; publishes the context the stores now give when something changed and every
    /// kind is settled, or when this settles the last one. Returns how many objects the kind has.
    fn update(
        &self,
        i: usize,
        change: impl FnOnce(&mut BTreeMap<String, ContextObject>) -> bool,
    ) -> usize {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(store) = stores.objects.get_mut(i) else {
            return 0;
        };
        let changed = change(store);
        let count = store.len();
        let was_settled = stores.settled.iter().all(|&s| s);
        if let Some(settled) = stores.settled.get_mut(i) {
            *settled = true;
        }
        let settled = stores.settled.iter().all(|&s| s);
        if settled && (changed || !was_settled) {
            let mut context = ClusterContext::default();
            for object in stores.objects.iter().flat_map(BTreeMap::values) {
                context.add(object.clone());
            }
            // Nothing listed (or nothing there) is no context.
            let context = (!context.is_empty()).then(|| Arc::new(context));
            let policy = self.base.with_context(context);
            self.published.store(Arc::new(policy));
        }
        drop(stores);
        if let Some(kind) = KIND_NAMES.get(i) {
            self.metrics.context_objects(kind, count);
        }
        count
    }
}

/// The kind is listed: logs `synced` (or `resumed` after an outage) once, sets the gauge.
fn synced(kind: &Kind, health: Health, objects: usize, metrics: &Metrics) -> Health {
    match health {
        Health::Starting => {
            tracing::info!(kind = kind.kind, objects, "cluster context: synced");
        }
        Health::Unavailable => {
            tracing::info!(kind = kind.kind, objects, "cluster context: resumed");
        }
        Health::Synced => {
            tracing::debug!(kind = kind.kind, objects, "cluster context: listed again");
        }
    }
    metrics.context_synced(kind.kind, true);
    Health::Synced
}

/// The kind's list or watch failed: logs `unavailable` with the reason once (later failures
/// of the same outage at debug level), clears the gauge.
fn unavailable(kind: &Kind, health: Health, error: &watcher::Error, metrics: &Metrics) -> Health {
    // 410 Gone: the watch's resourceVersion is too old, a normal event; the kind is listed
    // again at once, and nothing is unavailable.
    if gone(error) {
        tracing::debug!(kind = kind.kind, %error, "cluster context: listing again (410 Gone)");
        return health;
    }
    if health == Health::Unavailable {
        tracing::debug!(kind = kind.kind, %error, "cluster context: still unavailable");
    } else {
        let judging = match health {
            Health::Starting => "judging without it until it is listed",
            _ => "judging with the objects last seen until it is listed again",
        };
        tracing::warn!(
            kind = kind.kind,
            reason = %with_causes(error),
            "cluster context: unavailable; {judging}"
        );
    }
    metrics.context_synced(kind.kind, false);
    Health::Unavailable
}

/// A watch whose resourceVersion is too old (410 Gone).
fn gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// An error with its causes, each said once (`client error (Connect): tcp connect error:
/// Connection refused`): kube's own message often names only the layer that failed.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}
