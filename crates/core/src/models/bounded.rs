//! JSON arrays read with a bound on what is kept: the elements past the bound are checked
//! to be JSON and counted, not built, so a request's array is refused for its length before
//! it costs more than the bound's worth of elements. Built whole first, a 1 MiB body of empty
//! strings was 350,000 values and 20 MB before its length was looked at.
//!
//! [`Bounded`] keeps the count for an answer that says how many came; [`at_most`] is for a
//! field of a request type that stays a `Vec`, refused by its own length check; [`First`] is
//! for a platform's answer that lists more than the page it was asked for.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// For `#[serde(deserialize_with = "crate::models::bounded::at_most::<_, _, N>")]`: an array
/// with its first `N + 1` elements, the rest read as JSON and dropped unbuilt. One element past
/// `N` is kept so that the length check the request's validation makes anyway (`len() > N`)
/// refuses it with that endpoint's own error; that check must come before anything that
/// shortens the list (such as removing duplicates), or a long list would pass cut short.
pub fn at_most<'de, D, T, const N: usize>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    AtMost::<T, N>::deserialize(deserializer).map(AtMost::into_inner)
}

/// An array read as [`at_most`] reads it, for a field whose array sits inside an `Option`.
#[derive(Debug)]
pub struct AtMost<T, const N: usize>(Vec<T>);

impl<T, const N: usize> AtMost<T, N> {
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for AtMost<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bounded::read(deserializer, N.saturating_add(1)).map(|b| AtMost(b.items))
    }
}

/// An array's first `N` elements, the rest read as JSON and dropped unbuilt: a page a
/// platform was asked for holds at most `N`, and one that holds more costs no more than that.
/// Built whole first, 32 MiB of `{"":0}` elements was 3 GB.
#[derive(Debug)]
pub struct First<T, const N: usize>(Vec<T>);

impl<T, const N: usize> First<T, N> {
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T, const N: usize> Default for First<T, N> {
    fn default() -> Self {
        First(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for First<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bounded::read(deserializer, N).map(|b| First(b.items))
    }
}

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

    thread_local! {
        static BUILT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A number that counts how many of its kind were built.
    #[derive(Debug)]
    struct Counted;

    impl<'de> Deserialize<'de> for Counted {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            u32::deserialize(d)?;
            BUILT.with(|b| b.set(b.get() + 1));
            Ok(Counted)
        }
    }

    fn at_most_3(json: &str) -> Result<Vec<Counted>, serde_json::Error> {
        at_most::<_, Counted, 3>(&mut serde_json::Deserializer::from_str(json))
    }

    #[test]
    fn at_most_builds_one_element_past_its_bound_and_no_more() {
        BUILT.with(|b| b.set(0));
        let long = format!("[{}]", vec!["7"; 10_000].join(","));
        assert_eq!(at_most_3(&long).unwrap().len(), 4);
        assert_eq!(BUILT.with(|b| b.get()), 4, "elements built of 10,000");

        // Past the fourth, elements are not read as the element type at all, only as JSON.
        BUILT.with(|b| b.set(0));
        let mixed = at_most_3(r#"[1, 2, 3, 4, "five", {"six": [6]}, null]"#).unwrap();
        assert_eq!((mixed.len(), BUILT.with(|b| b.get())), (4, 4));
        assert!(at_most_3("[1, 2, 3, 4, 5, }").is_err());

        // Within the bound, every element is read and must be one.
        assert_eq!(at_most_3("[1, 2, 3]").unwrap().len(), 3);
        assert!(at_most_3("[]").unwrap().is_empty());
        assert!(at_most_3(r#"[1, "two"]"#).is_err());
        assert!(at_most_3("{}").is_err());

        // Inside an `Option`, through the type.
        let some: Option<AtMost<u8, 1>> = serde_json::from_str("[1, 2, 3]").unwrap();
        assert_eq!(some.unwrap().into_inner(), [1, 2]);
        let none: Option<AtMost<u8, 1>> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn first_builds_its_bound_and_no_more() {
        BUILT.with(|b| b.set(0));
        let long = format!("[{}]", vec!["7"; 10_000].join(","));
        let first: First<Counted, 3> = serde_json::from_str(&long).unwrap();
        assert_eq!((first.len(), BUILT.with(|b| b.get())), (3, 3));
        let short: First<u8, 3> = serde_json::from_str("[1, 2]").unwrap();
        assert_eq!(short.into_inner(), [1, 2]);
        assert!(serde_json::from_str::<First<u8, 3>>("[1, 2, 3, 4, }").is_err());
        assert!(serde_json::from_str::<First<u8, 3>>("null").is_err());
    }
}
