//! Query conditions with bound parameters, so handlers build dynamic filters without ever
//! putting a value into SQL text.

use tokio_postgres::types::ToSql;

/// The conditions of a WHERE clause and the parameters they bind, numbered in order.
#[derive(Default)]
pub struct Conditions {
    params: Vec<Box<dyn ToSql + Sync + Send>>,
    clauses: Vec<String>,
}

impl Conditions {
    /// Binds `value` and returns its placeholder (`$n`), for use in any part of the query.
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Adds the condition `<left> <placeholder of value>`, e.g. `left` = `"platform ="`.
    pub fn push(&mut self, left: &str, value: impl ToSql + Sync + Send + 'static) {
        let placeholder = self.bind(value);
        self.clauses.push(format!("{left} {placeholder}"));
    }

    /// Adds a condition written with placeholders from [`Conditions::bind`].
    pub fn clause(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `WHERE a AND b ...`, or nothing when there is no condition.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The parameters, in placeholder order.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The condition that the post `alias` (`p`, or `""` for none) holds `value` (a placeholder
/// of text) in its `column`: equality, but for `topics` (and `filtered_topics`), which holds
/// every topic the post matched (or was filtered out of), containment of the id the text names (none, never failing, for text that names
/// no id: an alert rule's key is text).
pub fn holds(alias: &str, column: &str, value: &str) -> String {
    let dot = if alias.is_empty() { "" } else { "." };
    match column {
        "topics" | "filtered_topics" => format!(
            "{alias}{dot}{column} @> ARRAY[CASE WHEN {value}::text ~ '^[0-9]{{1,18}}$' \
             THEN {value}::text::int8 END]"
        ),
        // A post whose language was not told nor detected holds none; the rollups and facets
        // name it `und`, and a filter on `und` must find it.
        "lang" => format!(
            "({alias}{dot}lang = {value} OR ({alias}{dot}lang IS NULL AND {value}::text = 'und'))"
        ),
        _ => format!("{alias}{dot}{column} = {value}"),
    }
}

/// Whether PostgreSQL can hold `text`: its `text` type cannot contain NUL, and binding a string
/// that does fails the whole query. Handlers check caller-supplied strings with this and answer
/// 400 instead.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// The first of `fields` (name, value) whose value PostgreSQL cannot hold, by name.
pub fn unstorable<'a>(
    fields: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Option<&'a str> {
    fields
        .into_iter()
        .find(|(_, value)| value.is_some_and(|v| !storable(v)))
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_the_one_character_text_cannot_hold() {
        assert!(storable("any text, even \u{1} or ü"));
        assert!(!storable("a\0b"));
        assert_eq!(
            unstorable([
                ("a", Some("ok")),
                ("b", None),
                ("c", Some("x\0")),
                ("d", Some("\0"))
            ]),
            Some("c")
        );
        assert_eq!(unstorable([("a", Some("ok"))]), None);
    }
}
