//! Readers of the JSON lists the API answers, which panic with the list when it is not the
//! list sought, so a failure shows what was served.

use serde_json::Value;

/// The items of the array `list`; panics with `list` when it is not an array.
pub fn items(list: &Value) -> &[Value] {
    list.as_array()
        .unwrap_or_else(|| panic!("an array: {list}"))
}

/// The first item of the array `list` that `matches`; panics with `list` when none does.
pub fn item_where(list: &Value, matches: impl Fn(&Value) -> bool) -> &Value {
    items(list)
        .iter()
        .find(|&item| matches(item))
        .unwrap_or_else(|| panic!("no item sought in {list}"))
}

/// The sum of `each` over the items of the array `list` (a total of counts or shares).
pub fn sum_of<T: std::iter::Sum>(list: &Value, each: impl Fn(&Value) -> T) -> T {
    items(list).iter().map(each).sum()
}

/// Each item of the array `list` as its `key` string and its `posts` count, in order, as the
/// metrics breakdowns list them.
pub fn posts_by_key(list: &Value) -> Vec<(String, i64)> {
    items(list)
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().to_string(),
                i["posts"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The `key` string of each object in the array `list`, in order.
pub fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    items(list)
        .iter()
        .map(|item| {
            item[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {item}"))
        })
        .collect()
}

/// The ids of the posts of the hits on a page of search results, in order; a hit without one
/// is passed over.
pub fn post_ids(page: &Value) -> Vec<&str> {
    items(&page["items"])
        .iter()
        .filter_map(|item| item["post"]["id"].as_str())
        .collect()
}
