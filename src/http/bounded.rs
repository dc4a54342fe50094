//! JSON arrays read with a bound on what is kept: the elements past the bound are checked
//! to be JSON and counted, not built, so a request's array is refused for its length before
//! it costs more than the bound's worth of elements. Built whole first, a 1 MiB body of empty
//! strings was 350,000 values and 20 MB before its length was looked at.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// The first elements of an array, and how many it had.
#[derive(Debug)]
pub struct Bounded<T> {
    pub items: Vec<T>,
    /// Every element of the array, the ones not kept included.
    pub received: usize,
}

impl<T> Bounded<T> {
    /// Reads an array from `deserializer`, keeping its first `keep` elements.
    pub fn read<'de, D>(deserializer: D, keep: usize) -> Result<Bounded<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        deserializer.deserialize_seq(Keeping {
            keep,
            item: PhantomData,
        })
    }
}

struct Keeping<T> {
    keep: usize,
    item: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Keeping<T> {
    type Value = Bounded<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bounded<T>, A::Error> {
        let mut items = Vec::new();
        while items.len() < self.keep {
            match seq.next_element::<T>()? {
                Some(item) => items.push(item),
                None => {
                    let received = items.len();
                    return Ok(Bounded { items, received });
                }
            }
        }
        let mut received = items.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            received += 1;
        }
        Ok(Bounded { items, received })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str, keep: usize) -> Result<Bounded<u32>, serde_json::Error> {
        Bounded::read(&mut serde_json::Deserializer::from_str(json), keep)
    }

    #[test]
    fn elements_past_the_bound_are_counted_not_kept() {
        let all = read("[1, 2, 3]", 5).unwrap();
        assert_eq!((all.items, all.received), (vec![1, 2, 3], 3));
        let some = read("[1, 2, 3, {\"a\": [4]}, \"x\"]", 2).unwrap();
        assert_eq!((some.items, some.received), (vec![1, 2], 5));
        assert!(read("[]", 2).unwrap().items.is_empty());
        // Still JSON past the bound, and still the element type within it.
        assert!(read("[1, 2, 3, }", 2).is_err());
        assert!(read("[\"one\"]", 2).is_err());
        assert!(read("{}", 2).is_err());
    }
}
