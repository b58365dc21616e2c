//! A watch-fed store that keeps each object as compact JSON, LZ4-compressed, rather than as a decoded
//! struct.
//!
//! A decoded `Pod` costs about 9 KB of heap (k8s-openapi's structs hold every optional field
//! inline, and a reflector store clones each object it keeps); the same Pod as JSON is about 2 KB,
//! and about half that compressed (LZ4's block format: JSON's repeated keys and values compress
//! well, and decompressing runs at gigabytes per second). At 10,000 kwok pods the operator went from
//! 350 MB to 121 MB with JSON (docs/benchmarks.md). Objects are decoded again only when a snapshot
//! of their namespace is taken, which costs a few milliseconds per thousand objects, once per
//! detection pass.
//!
//! The store follows a watcher's events as kube's reflector does: the objects of a (re)list replace
//! the whole store at once when the list is complete, so a relist never shows half a namespace.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use kube::Resource;
use kube::runtime::watcher::Event;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Namespace ("" for cluster-scoped objects) → name → the object's JSON, compressed ([`pack`]).
type Objects = BTreeMap<String, HashMap<String, Box<[u8]>>>;

#[derive(Default)]
struct State {
    objects: Objects,
    /// The objects of a list in progress, swapped in at its end.
    listing: Option<Objects>,
}

/// The store's shared state; cheap to clone.
pub struct CompactStore<K> {
    /// The kind's name, for errors.
    kind_name: &'static str,
    state: Arc<RwLock<State>>,
    /// `true` once the first complete list is in.
    ready: tokio::sync::watch::Sender<bool>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for CompactStore<K> {
    fn clone(&self) -> Self {
        CompactStore { kind_name: self.kind_name, state: self.state.clone(), ready: self.ready.clone(), kind: PhantomData }
    }
}

impl<K> CompactStore<K> {
    /// An empty store of `kind_name` objects, not ready until its first complete list.
    pub fn new(kind_name: &'static str) -> Self {
        CompactStore { kind_name, state: Arc::default(), ready: tokio::sync::watch::Sender::new(false), kind: PhantomData }
    }
}

/// An object's JSON as the store keeps it: LZ4's block format, its length first.
fn pack(json: &[u8]) -> Box<[u8]> {
    lz4_flex::compress_prepend_size(json).into_boxed_slice()
}

/// The object [`pack`] kept, decoded as `T`.
fn unpack<T: DeserializeOwned>(packed: &[u8]) -> Result<T, Undecodable> {
    let json = lz4_flex::decompress_size_prepended(packed)?;
    Ok(serde_json::from_slice(&json)?)
}

/// Why a kept object could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum Undecodable {
    #[error("its compressed bytes are corrupt: {0}")]
    Compression(#[from] lz4_flex::block::DecompressError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A stored object could not be decoded again (it was encoded by this process, so this is a bug or a
/// type mismatch; the snapshot that needed it cannot be judged).
#[derive(Debug, thiserror::Error)]
#[error("a cached {kind} {namespace}/{name} cannot be decoded: {source}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: Undecodable,
}

fn key<K: Resource>(o: &K) -> (String, String) {
    let m = o.meta();
    (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default())
}

impl<K> CompactStore<K>
where
    K: Resource + Serialize + DeserializeOwned,
{
    /// Follow one watcher event; the namespace (or `""`) of each object it carried, for the caller to
    /// announce as changed. An object that cannot be encoded is dropped with a warning (serializing a
    /// decoded object does not fail in practice).
    pub fn apply(&self, event: &Event<K>) -> Vec<String> {
        let encode = |o: &K| match serde_json::to_vec(o) {
            Ok(v) => Some(pack(&v)),
            Err(e) => {
                tracing::warn!(error = %e, "an object could not be encoded for the cache; left out");
                None
            }
        };
        let Ok(mut state) = self.state.write() else { return Vec::new() };
        match event {
            Event::Init => {
                state.listing = Some(Objects::new());
                Vec::new()
            }
            Event::InitApply(o) => {
                let (ns, name) = key(o);
                if let (Some(listing), Some(json)) = (state.listing.as_mut(), encode(o)) {
                    listing.entry(ns.clone()).or_default().insert(name, json);
                }
                vec![ns]
            }
            Event::InitDone => {
                if let Some(listed) = state.listing.take() {
                    state.objects = listed;
                }
                drop(state);
                self.ready.send_replace(true);
                Vec::new()
            }
            Event::Apply(o) => {
                let (ns, name) = key(o);
                if let Some(json) = encode(o) {
                    state.objects.entry(ns.clone()).or_default().insert(name, json);
                }
                vec![ns]
            }
            Event::Delete(o) => {
                let (ns, name) = key(o);
                if let Some(names) = state.objects.get_mut(&ns) {
                    names.remove(&name);
                    if names.is_empty() {
                        state.objects.remove(&ns);
                    }
                }
                vec![ns]
            }
        }
    }

    /// Wait until the first complete list is in.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.subscribe();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The objects of `namespace` (`""`: the cluster-scoped ones), decoded, sorted by name.
    pub fn namespace(&self, namespace: &str) -> Result<Vec<K>, DecodeError> {
        self.namespace_as(namespace)
    }

    /// [`Self::namespace`], decoded as `T` (the analysis' own types of the Gateway API's kinds,
    /// which are watched as dynamic objects).
    pub fn namespace_as<T: DeserializeOwned>(&self, namespace: &str) -> Result<Vec<T>, DecodeError> {
        let Ok(state) = self.state.read() else { return Ok(Vec::new()) };
        let Some(names) = state.objects.get(namespace) else { return Ok(Vec::new()) };
        let mut sorted: Vec<(&String, &Box<[u8]>)> = names.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted
            .into_iter()
            .map(|(name, packed)| {
                unpack(packed).map_err(|source| DecodeError {
                    kind: self.kind_name,
                    namespace: namespace.to_owned(),
                    name: name.clone(),
                    source,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(ns: &str, name: &str, key: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns}, "data": {key: ""}
        }))
        .unwrap()
    }

    #[test]
    fn objects_of_a_relist_replace_the_store_only_once_the_list_is_complete() {
        let store = CompactStore::<ConfigMap>::new("ConfigMap");
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(cm("shop", "old", "a")));
        store.apply(&Event::InitDone);
        assert_eq!(store.namespace("shop").unwrap().len(), 1);
        // A relist: until its end, the old objects stay visible.
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(cm("shop", "new", "b")));
        let during = store.namespace("shop").unwrap();
        assert_eq!(during.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>(), ["old"]);
        store.apply(&Event::InitDone);
        let after = store.namespace("shop").unwrap();
        assert_eq!(after.iter().map(|c| c.metadata.name.clone().unwrap()).collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn a_changed_object_replaces_its_old_self_and_a_deleted_one_leaves() {
        let store = CompactStore::<ConfigMap>::new("ConfigMap");
        store.apply(&Event::Init);
        store.apply(&Event::InitDone);
        assert_eq!(store.apply(&Event::Apply(cm("shop", "app", "a"))), ["shop"]);
        store.apply(&Event::Apply(cm("shop", "app", "b")));
        store.apply(&Event::Apply(cm("billing", "app", "c")));
        let shop = store.namespace("shop").unwrap();
        assert_eq!(shop.len(), 1);
        assert!(shop[0].data.as_ref().unwrap().contains_key("b"));
        store.apply(&Event::Delete(cm("shop", "app", "b")));
        assert!(store.namespace("shop").unwrap().is_empty());
        assert_eq!(store.namespace("billing").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_store_is_ready_only_after_its_first_complete_list() {
        let store = CompactStore::<ConfigMap>::new("ConfigMap");
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(cm("shop", "app", "a")));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), store.wait_until_ready()).await;
        assert!(waiting.is_err(), "not ready during the first list");
        store.apply(&Event::InitDone);
        store.wait_until_ready().await;
    }

    /// A real node's Pod (from the corpus), kept compressed and read back whole.
    #[test]
    fn a_pod_is_kept_in_fewer_bytes_than_its_json_and_reads_back_the_same() {
        use k8s_openapi::api::core::v1::Pod;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/incidents/crashloop-missing-env.yaml");
        let snapshot = aegis_analysis::Snapshot::from_text(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pod: Pod = snapshot.pods[0].clone();
        let json = serde_json::to_vec(&pod).unwrap();
        let store = CompactStore::<Pod>::new("Pod");
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(pod.clone()));
        store.apply(&Event::InitDone);
        let kept: usize = store.state.read().unwrap().objects.values().flat_map(|n| n.values()).map(|b| b.len()).sum();
        assert!(kept * 3 < json.len() * 2, "{kept} bytes kept for {} of JSON", json.len());
        let ns = pod.metadata.namespace.clone().unwrap();
        assert_eq!(store.namespace(&ns).unwrap(), [pod]);
    }
}
