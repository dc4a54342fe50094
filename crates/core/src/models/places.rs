//! Places counted by key, each given back when dropped: how many connections a network holds
//! open, how many live sessions a client holds. A place lives as long as what it was taken for,
//! whatever ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The places taken, by key, at most `cap` a key (0: no cap).
#[derive(Debug, Default)]
pub struct Places {
    cap: usize,
    held: Mutex<HashMap<String, usize>>,
}

/// One place of a key; given back when dropped.
#[derive(Debug)]
pub struct Place {
    places: Arc<Places>,
    key: String,
}

impl Places {
    pub fn new(cap: usize) -> Arc<Places> {
        Arc::new(Places {
            cap,
            held: Mutex::default(),
        })
    }

    /// A place of `key`, or `None` when it holds its cap.
    pub fn take(self: &Arc<Self>, key: &str) -> Option<Place> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(key.to_string()).or_default();
        if self.cap > 0 && *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Place {
            places: self.clone(),
            key: key.to_string(),
        })
    }

    /// Places `key` holds now.
    pub fn held(&self, key: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(key).copied().unwrap_or(0)
    }

    /// Keys holding a place now.
    pub fn keys(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self
            .places
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_its_cap_and_a_place_given_back_is_taken_again() {
        let places = Places::new(2);
        let first = places.take("a").expect("a place");
        let second = places.take("a").expect("a place");
        assert!(places.take("a").is_none(), "a holds two");
        let elsewhere = places.take("b").expect("another key's own places");
        drop(first);
        assert_eq!(places.held("a"), 1);
        let again = places.take("a").expect("a place given back");
        drop((second, again, elsewhere));
        assert_eq!(places.held("a"), 0);
        assert_eq!(places.keys(), 0, "no empty entries kept");
        let unlimited = Places::new(0);
        let taken: Vec<_> = (0..1000).filter_map(|_| unlimited.take("a")).collect();
        assert_eq!(taken.len(), 1000);
    }
}
