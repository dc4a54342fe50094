//! Values read once per process and shared by every worker while any of them holds one: the
//! tokenizers and large initializers of model bundles, which would otherwise be copied into
//! each worker's analyzer.

use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Held weakly: a value goes when its last user drops it, and is read again if needed later.
pub struct SharedByKey<K, V> {
    loaded: Mutex<Vec<(K, Weak<V>)>>,
}

impl<K: PartialEq, V> SharedByKey<K, V> {
    pub const fn new() -> Self {
        Self {
            loaded: Mutex::new(Vec::new()),
        }
    }

    /// The live value for `key`, or the one `load` makes. Loaded under the lock, so workers
    /// starting together wait for one load instead of each making their own copy.
    pub fn get_or_load(
        &self,
        key: K,
        load: impl FnOnce() -> anyhow::Result<V>,
    ) -> anyhow::Result<Arc<V>> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        loaded.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(value) = loaded
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(value);
        }
        let value = Arc::new(load()?);
        loaded.push((key, Arc::downgrade(&value)));
        Ok(value)
    }
}

impl<K: PartialEq, V> Default for SharedByKey<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_while_in_use_and_a_fresh_load_after() {
        let shared: SharedByKey<&str, String> = SharedByKey::new();
        let mut loads = 0;
        let mut load = |v: &str| {
            loads += 1;
            Ok(v.to_string())
        };
        let a = shared.get_or_load("a", || load("first")).unwrap();
        let again = shared.get_or_load("a", || load("second")).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        let b = shared.get_or_load("b", || load("other")).unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("first", "other"));
        drop((a, again));
        let fresh = shared.get_or_load("a", || load("third")).unwrap();
        assert_eq!(fresh.as_str(), "third");
        assert_eq!(loads, 3);
        assert!(shared
            .get_or_load("c", || anyhow::bail!("unreadable"))
            .is_err());
    }
}
