//! A series' OpenTelemetry attributes, built from its compact tag key.
use std::sync::Arc;

use opentelemetry::{Key, KeyValue, Value};
use parking_lot::Mutex;

use crate::instrument::tags::TagKey;

/// Tag keys an instrument shares between its series' attributes (tag keys are few; past this,
/// each series gets its own copy).
const MAX_SHARED_TAG_KEYS: usize = 64;

/// Builds the attributes of one instrument's series: the global tags, then the series' tags.
pub(crate) struct Attributes {
    /// The global tags as OpenTelemetry attributes, built once.
    global: Vec<KeyValue>,
    /// Tag keys seen so far, shared by every series' attributes.
    keys: Mutex<Vec<Key>>,
}

impl Attributes {
    pub(crate) fn new(global_tags: &[(String, String)]) -> Self {
        let global = global_tags
            .iter()
            .map(|(k, v)| {
                KeyValue::new(
                    Key::from(Arc::<str>::from(k.as_str())),
                    Value::from(Arc::<str>::from(v.as_str())),
                )
            })
            .collect();
        Attributes { global, keys: Mutex::new(Vec::new()) }
    }

    /// The attributes of `key`: global tags with the key's tags over them, sorted by key as
    /// OpenTelemetry sorts them (its tracker map then keeps one key per series, not the given
    /// order and the sorted one). Global tags and tag keys are shared `Arc<str>`s, so the copy
    /// the SDK keeps allocates only the series' own tag values.
    pub(crate) fn of(&self, key: &TagKey) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(self.global.len() + key.len());
        self.fill(key, &mut attrs);
        attrs
    }

    /// [`Self::of`] into `attrs` (empty), which may live on the stack.
    pub(crate) fn fill<A>(&self, key: &TagKey, attrs: &mut A)
    where
        A: Extend<KeyValue> + std::ops::DerefMut<Target = [KeyValue]>,
    {
        attrs.extend(self.global.iter().cloned());
        let mut keys = self.keys.lock();
        for (k, v) in key.pairs() {
            // An `Arc<str>`: the SDK's copy shares it instead of copying the string.
            let value = Value::from(Arc::<str>::from(v));
            match attrs.iter_mut().find(|kv| kv.key.as_str() == k) {
                Some(kv) => kv.value = value,
                None => {
                    let shared = match keys.iter().find(|key| key.as_str() == k) {
                        Some(key) => key.clone(),
                        None => {
                            let key = Key::from(Arc::<str>::from(k));
                            if keys.len() < MAX_SHARED_TAG_KEYS {
                                keys.push(key.clone());
                            }
                            key
                        }
                    };
                    attrs.extend(std::iter::once(KeyValue::new(shared, value)));
                }
            }
        }
        drop(keys);
        attrs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
}
