//! A feed document brought to a shape the parser reads in bounded memory and time, before it
//! reads it. `feed-rs` builds everything a document lists, and some of it more than once: a
//! JSON Feed's authors are copied into each of its items that has none (10,000 of each, 200
//! KB, were 10^8 author records), each nested `xml:base` is kept resolved against the one
//! before it (34,000 in 1 MiB were 9 GB), 1.5 million `<item/>` fit in the 10 MiB read, and a
//! start tag's attributes are compared with each other (a few hundred thousand took hours).
//! Memory running out aborts the process, which no `catch_unwind` stops, and the feed is
//! fetched again once it restarts.
//!
//! So a document is walked first, without building it: XML nested deeper than
//! [`MAX_DEPTH`], with a start tag of more than [`MAX_ATTRIBUTES`] attributes, or with
//! `xml:base` values longer than [`MAX_BASE_BYTES`] along one path is refused; past
//! [`MAX_ENTRIES`] entries the rest of a document is left out (feeds list their newest
//! entries first), as are a JSON Feed's authors, tags and attachments past a few. What a real
//! feed holds (tens to hundreds of entries, a podcast's whole archive of a thousand or two) is
//! handed on as it came.

use std::borrow::Cow;
use std::fmt;

use quick_xml::errors::IllFormedError;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::models::bounded::Bounded;

/// Entries of a document read (RSS items, Atom entries, JSON Feed items); the position
/// remembers the first 500 of them.
pub const MAX_ENTRIES: usize = 2_000;

/// Levels of XML elements, the root being the first: an Atom entry's XHTML content starts at
/// the fourth.
pub const MAX_DEPTH: usize = 64;

/// Attributes of one start tag; a root declaring its namespaces has a few dozen.
pub const MAX_ATTRIBUTES: usize = 256;

/// Bytes of the `xml:base` values of one element and those around it together: each is
/// resolved against the one before it, and every one is kept while its element is open.
pub const MAX_BASE_BYTES: usize = 8 << 10;

/// Authors of a JSON Feed or of one of its items; the feed's are copied into every item
/// without its own.
pub const MAX_PEOPLE: usize = 16;

/// Tags of one JSON Feed item.
pub const MAX_TAGS: usize = 64;

/// Attachments of one JSON Feed item.
pub const MAX_ATTACHMENTS: usize = 16;

/// `text` as the parser may read it: as it came, cut after its first [`MAX_ENTRIES`] entries
/// (and for a JSON Feed, its lists of authors, tags and attachments cut), or refused with the
/// reason. Whether a document is XML or JSON is decided as the parser decides it, by whichever
/// of `<` and `{` comes first; a document with neither is handed on for the parser to refuse.
pub fn bounded(text: &str) -> Result<Cow<'_, str>, String> {
    match text.bytes().find(|b| *b == b'<' || *b == b'{') {
        Some(b'<') => xml(text),
        Some(_) => json(text).map_err(|e| format!("is not a JSON Feed: {e}")),
        None => Ok(Cow::Borrowed(text)),
    }
}

/// Walks an XML document as the parser's own reader, with the parser's settings, reads it.
/// The parser reads on past some errors (one inside a title is dropped with the title), so
/// the walk does too.
fn xml(text: &str) -> Result<Cow<'_, str>, String> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.trim_markup_names_in_closing_tags = true;
    config.trim_text(false);
    // The open elements' names, and the `xml:base` bytes up to each.
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut entries = 0;
    // Where the last entry kept ends.
    let mut kept_to = 0;
    // The last read failed without moving on.
    let mut stuck = false;
    loop {
        let before = position(&reader);
        match reader.read_event() {
            Ok(Event::Start(tag)) => {
                if open.len() == MAX_DEPTH {
                    return Err(format!("nests elements deeper than {MAX_DEPTH} levels"));
                }
                let mut base = open.last().map_or(0, |(_, b)| *b);
                let mut attributes = 0;
                for attribute in tag.attributes().with_checks(false) {
                    attributes += 1;
                    if attributes > MAX_ATTRIBUTES {
                        return Err(format!(
                            "has a start tag with more than {MAX_ATTRIBUTES} attributes"
                        ));
                    }
                    match attribute {
                        Ok(a) if a.key.as_ref() == b"xml:base" => base += a.value.len(),
                        _ => {}
                    }
                }
                if base > MAX_BASE_BYTES {
                    return Err(format!(
                        "has xml:base values longer than {MAX_BASE_BYTES} bytes together"
                    ));
                }
                if is_entry(tag.local_name().as_ref(), open.len() + 1) {
                    entries += 1;
                    if entries > MAX_ENTRIES {
                        return Ok(Cow::Owned(cut(text, kept_to, &open)));
                    }
                }
                let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
                open.push((name, base));
            }
            Ok(Event::End(tag)) => {
                open.pop();
                if is_entry(tag.local_name().as_ref(), open.len() + 1) {
                    kept_to = position(&reader);
                }
            }
            Ok(Event::Eof) => return Ok(Cow::Borrowed(text)),
            // The reader closed its element as it refused the end tag (unescaped HTML in a
            // description, `<br>` left open): the walk closes it too, or its depth would only grow.
            Err(quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { .. })) => {
                open.pop();
            }
            // An error the reader cannot read past ends the document for the parser too.
            Err(_) if position(&reader) == before && stuck => return Ok(Cow::Borrowed(text)),
            Err(_) => {
                stuck = position(&reader) == before;
                continue;
            }
            Ok(_) => {}
        }
        stuck = false;
    }
}

fn position(reader: &Reader<&[u8]>) -> usize {
    usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX)
}

/// Whether an element named `local` at `depth` (the root's being 1) is one of a feed's
/// entries: an Atom `entry` and an RSS 1.0 `item` are the root's children, an RSS 0.9x and
/// 2.0 `item` its channel's.
fn is_entry(local: &[u8], depth: usize) -> bool {
    matches!(depth, 2 | 3) && matches!(local, b"item" | b"entry")
}

/// `text` up to `end`, the elements still open there closed.
fn cut(text: &str, end: usize, open: &[(String, usize)]) -> String {
    let mut out = text[..end].to_string();
    for (name, _) in open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out
}

/// The members of a JSON Feed the parser reads (`feed-rs` 2.4: the fields of its `JsonFeed`).
const FEED_MEMBERS: &[&str] = &[
    "version",
    "title",
    "home_page_url",
    "feed_url",
    "language",
    "description",
    "icon",
    "favicon",
    "author",
    "authors",
    "items",
];

/// The members of a JSON Feed item the parser reads (the fields of its `JsonItem`).
const ITEM_MEMBERS: &[&str] = &[
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "date_published",
    "date_modified",
    "author",
    "authors",
    "tags",
    "attachments",
];

/// A JSON Feed as written, unless one of its lists is longer than its bound: then rewritten
/// with only the members the parser reads, each list cut to its bound. Elements past a bound
/// are read as JSON and not built.
fn json(text: &str) -> serde_json::Result<Cow<'_, str>> {
    let feed = members(text, FEED_MEMBERS)?;
    let mut cut = false;
    let mut out = String::new();
    write_object(&mut out, &feed, |out, name, value| {
        match name {
            "authors" => cut |= write_list(out, value, MAX_PEOPLE, write_raw)?,
            "items" => {
                let mut items_cut = false;
                cut |= write_list(out, value, MAX_ENTRIES, |out, item| {
                    items_cut |= write_item(out, item)?;
                    Ok(())
                })?;
                cut |= items_cut;
            }
            _ => out.push_str(value.get()),
        }
        Ok(())
    })?;
    Ok(if cut {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    })
}

/// Writes a JSON Feed item as [`json`] writes a feed; true when one of its lists was cut.
fn write_item(out: &mut String, item: &RawValue) -> serde_json::Result<bool> {
    let Ok(item_members) = members(item.get(), ITEM_MEMBERS) else {
        // Not an object: the parser refuses it itself.
        out.push_str(item.get());
        return Ok(false);
    };
    let mut cut = false;
    write_object(out, &item_members, |out, name, value| {
        let keep = match name {
            "authors" => MAX_PEOPLE,
            "tags" => MAX_TAGS,
            "attachments" => MAX_ATTACHMENTS,
            _ => {
                out.push_str(value.get());
                return Ok(());
            }
        };
        cut |= write_list(out, value, keep, write_raw)?;
        Ok(())
    })?;
    Ok(cut)
}

fn write_raw(out: &mut String, value: &RawValue) -> serde_json::Result<()> {
    out.push_str(value.get());
    Ok(())
}

type Members = Vec<(&'static str, Box<RawValue>)>;

/// The members of the JSON object `text` named in `names`, as written; the others are read
/// as JSON and dropped. A name given twice is refused, as the parser refuses it.
fn members(text: &str, names: &'static [&'static str]) -> serde_json::Result<Members> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let found = Named(names).deserialize(&mut reader)?;
    reader.end()?;
    Ok(found)
}

struct Named(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Named {
    type Value = Members;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Members, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Named {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut found: Members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.0.iter().find(|n| **n == key) {
                Some(name) if found.iter().any(|(n, _)| n == name) => {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate field `{name}`"
                    )));
                }
                Some(name) => found.push((name, map.next_value()?)),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

fn write_object<F>(out: &mut String, members: &Members, mut value: F) -> serde_json::Result<()>
where
    F: FnMut(&mut String, &str, &RawValue) -> serde_json::Result<()>,
{
    out.push('{');
    for (i, (name, raw)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // The names are the parser's own, plain ASCII.
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        value(out, name, raw)?;
    }
    out.push('}');
    Ok(())
}

/// Writes the array `value` with its first `keep` elements (each by `element`); true when it
/// had more. A value that is not an array is written as it is, for the parser to take (`null`)
/// or refuse.
fn write_list<F>(
    out: &mut String,
    value: &RawValue,
    keep: usize,
    mut element: F,
) -> serde_json::Result<bool>
where
    F: FnMut(&mut String, &RawValue) -> serde_json::Result<()>,
{
    let mut reader = serde_json::Deserializer::from_str(value.get());
    let Ok(list) = Bounded::<Box<RawValue>>::read(&mut reader, keep) else {
        out.push_str(value.get());
        return Ok(false);
    };
    out.push('[');
    for (i, item) in list.items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        element(out, item)?;
    }
    out.push(']');
    Ok(list.received > list.items.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> feed_rs::model::Feed {
        feed_rs::parser::parse(text.as_bytes()).expect("a feed")
    }

    fn is_as_it_came(text: &str) -> bool {
        matches!(bounded(text), Ok(Cow::Borrowed(_)))
    }

    #[test]
    fn real_feeds_are_handed_on_as_they_came() {
        assert!(is_as_it_came(include_str!(
            "../../../tests/fixtures/feeds/news.rss"
        )));
        assert!(is_as_it_came(include_str!(
            "../../../tests/fixtures/feeds/blog.atom"
        )));
        assert!(is_as_it_came(&full_json_feed(MAX_TAGS)));
        assert!(is_as_it_came("not a feed"));
        // Errors the reader reads past are the parser's to judge.
        assert!(is_as_it_came(
            "<rss><channel><title></b></title></channel></rss><"
        ));
    }

    /// The reader closes an element as it refuses a mismatched end tag; the walk kept it open,
    /// so a feed of descriptions holding an unclosed `<br>` grew two levels an item in the walk
    /// where the reader grows one (each `</item>` then closes the description), and 40 items
    /// were refused as nesting past the limit the reader had not reached.
    #[test]
    fn mismatched_end_tags_do_not_deepen_the_walk() {
        let items = "<item><title>t</title><description>a<br>b</description></item>".repeat(40);
        let doc = format!("<rss version=\"2.0\"><channel><title>c</title>{items}</channel></rss>");
        assert!(bounded(&doc).is_ok(), "{:?}", bounded(&doc).err());
    }

    /// A JSON Feed with every member the parser reads, its second item with `tags` tags.
    fn full_json_feed(tags: usize) -> String {
        let tags: Vec<String> = (0..tags).map(|i| format!("\"t{i}\"")).collect();
        format!(
            r#"{{"version": "https://jsonfeed.org/version/1.1", "title": "Desk",
"home_page_url": "https://news.example/", "feed_url": "https://news.example/feed.json",
"language": "en", "description": "News", "icon": "https://news.example/i.png",
"favicon": "https://news.example/f.ico", "author": {{"name": "Ann"}},
"authors": [{{"name": "Bo", "url": "https://news.example/bo"}}], "_ext": {{"x": [1, 2]}},
"items": [{{"id": "1", "url": "https://news.example/1", "external_url": "https://other.example/",
"title": "Recall", "content_html": "<p>Recalled</p>", "content_text": "Recalled",
"summary": "A recall", "date_published": "2026-11-02T10:00:00Z",
"date_modified": "2026-11-02T11:00:00Z", "author": {{"name": "Cy"}},
"authors": [{{"name": "Di"}}], "tags": ["a", "b"], "language": "en",
"attachments": [{{"url": "https://news.example/a.mp3", "mime_type": "audio/mpeg",
"title": "Audio", "size_in_bytes": 10}}]}},
{{"id": "2", "content_text": "Review", "tags": [{}]}}]}}"#,
            tags.join(", ")
        )
    }

    /// Rewritten to cut a list, a JSON Feed keeps every other member the parser reads, as it
    /// was written.
    #[test]
    fn a_json_feed_rewritten_to_cut_a_list_keeps_the_rest() {
        let long = full_json_feed(MAX_TAGS + 5);
        let Ok(Cow::Owned(cut)) = bounded(&long) else {
            panic!("not rewritten")
        };
        let mut whole = parsed(&long);
        whole.entries[1].categories.truncate(MAX_TAGS);
        assert_eq!(parsed(&cut), whole);
        assert_eq!(whole.entries[0].authors.len(), 2, "{whole:?}");
    }

    /// 500 authors copied by the parser into each of 500 items were 250,000 author records
    /// from 15 KB; 10,000 of each, 10^8 records and gigabytes.
    #[test]
    fn a_json_feeds_authors_are_kept_to_a_few() {
        let authors: Vec<String> = (0..500).map(|i| format!(r#"{{"name":"a{i}"}}"#)).collect();
        let items = vec!["{}"; 500].join(",");
        let doc = format!(
            r#"{{"version":"https://jsonfeed.org/version/1.1","title":"t","authors":[{}],"items":[{items}]}}"#,
            authors.join(",")
        );
        let feed = parsed(&bounded(&doc).unwrap());
        assert_eq!(feed.entries.len(), 500);
        let total: usize = feed.entries.iter().map(|e| e.authors.len()).sum();
        assert!(total <= 500 * MAX_PEOPLE, "{total} author records");
        assert!(feed.authors.len() <= MAX_PEOPLE);

        // An item's own authors, which the parser compares with each other.
        let doc = format!(
            r#"{{"version":"https://jsonfeed.org/version/1.1","title":"t","items":[{{"authors":[{}]}}]}}"#,
            authors.join(",")
        );
        let feed = parsed(&bounded(&doc).unwrap());
        assert_eq!(feed.entries[0].authors.len(), MAX_PEOPLE);
    }

    #[test]
    fn entries_past_the_bound_are_left_out() {
        let items: String = (0..MAX_ENTRIES + 500)
            .map(|i| format!("<item><guid>https://news.example/{i}</guid></item>\n"))
            .collect();
        let rss = format!(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>"#
        );
        let atom = format!(
            r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{}</feed>"#,
            items.replace("item>", "entry>").replace("guid>", "id>")
        );
        let json = format!(
            r#"{{"version":"https://jsonfeed.org/version/1","title":"t","items":[{}]}}"#,
            vec![r#"{"id":"x"}"#; MAX_ENTRIES + 500].join(",")
        );
        for doc in [rss, atom, json] {
            let feed = parsed(&bounded(&doc).unwrap());
            assert_eq!(feed.entries.len(), MAX_ENTRIES, "{}", &doc[..40]);
        }
        let feed = parsed(&bounded(&items_feed(MAX_ENTRIES + 1)).unwrap());
        let ids: Vec<&str> = [0, MAX_ENTRIES - 1]
            .iter()
            .map(|i| feed.entries[*i].id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["https://news.example/0", "https://news.example/1999"],
            "the first ones kept"
        );
        assert!(is_as_it_came(&items_feed(MAX_ENTRIES)));
    }

    fn items_feed(n: usize) -> String {
        let items: String = (0..n)
            .map(|i| format!("<item><guid>https://news.example/{i}</guid></item>"))
            .collect();
        format!(r#"<rss version="2.0"><channel><title>t</title>{items}</channel></rss>"#)
    }

    /// Each `xml:base` was resolved against the one around it and all were kept: 34,000
    /// nested in 1 MiB were 9 GB.
    #[test]
    fn nesting_and_xml_base_are_bounded() {
        let nested = |levels: usize, base: &str| {
            format!(
                r#"<rss version="2.0"><channel><title>t</title>{}<item><title>i</title></item>{}</channel></rss>"#,
                format!(r#"<x xml:base="{base}">"#).repeat(levels),
                "</x>".repeat(levels)
            )
        };
        let error = bounded(&nested(5_000, "a/")).expect_err("5,000 levels");
        assert!(error.contains("deeper than 64"), "{error}");
        // Empty bases too; the root, its channel, the item and its title count.
        assert!(bounded(&nested(MAX_DEPTH - 3, "")).is_err());
        assert!(is_as_it_came(&nested(MAX_DEPTH - 4, "a/")));
        // Long values, at any depth.
        let long = "a".repeat(MAX_BASE_BYTES / 4);
        let error = bounded(&nested(5, &long)).expect_err("long bases");
        assert!(error.contains("xml:base"), "{error}");
        assert!(is_as_it_came(&nested(3, &long)));
    }

    /// The parser compares a tag's attributes with each other: a few hundred thousand took
    /// hours.
    #[test]
    fn a_start_tag_has_a_bounded_number_of_attributes() {
        let tag = |n: usize| {
            let attributes: String = (0..n).map(|i| format!(r#" a{i}="""#)).collect();
            format!(
                r#"<rss version="2.0"><channel><title>t</title><item{attributes}><title>i</title></item></channel></rss>"#
            )
        };
        let error = bounded(&tag(10_000)).expect_err("10,000 attributes");
        assert!(error.contains("attributes"), "{error}");
        assert!(is_as_it_came(&tag(MAX_ATTRIBUTES)));
    }
}
