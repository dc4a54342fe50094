//! The cases of docs/topics.md, read from the document itself, so what it promises is what the
//! matcher does.

/// The document's cases table.
pub const DOCUMENT: &str = include_str!("../../../../docs/topics.md");

/// One row of the cases table.
#[derive(Debug, Clone)]
pub struct Case {
    pub query: String,
    pub text: String,
    /// `name=value` pairs of the post's other properties.
    pub post: Vec<(String, String)>,
    pub matches: bool,
}

/// Every case of the document, in order.
pub fn cases() -> Vec<Case> {
    let start = DOCUMENT
        .find("<!-- cases -->")
        .expect("docs/topics.md has its cases");
    let end = DOCUMENT
        .find("<!-- /cases -->")
        .expect("docs/topics.md closes its cases");
    DOCUMENT[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            assert_eq!(cells.len(), 4, "a case has four cells: {line}");
            let code = |cell: &str| {
                cell.strip_prefix('`')
                    .and_then(|c| c.strip_suffix('`'))
                    .unwrap_or_else(|| panic!("`{cell}` is not code in {line}"))
                    .to_string()
            };
            let post = code_or_empty(cells[2])
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .map(|pair| {
                    let (name, value) = pair.trim().split_once('=').expect("name=value");
                    (name.to_string(), value.to_string())
                })
                .collect();
            Case {
                query: code(cells[0]),
                text: code(cells[1]),
                post,
                matches: match cells[3] {
                    "yes" => true,
                    "no" => false,
                    other => panic!("`{other}` is neither yes nor no in {line}"),
                },
            }
        })
        .collect()
}

fn code_or_empty(cell: &str) -> String {
    cell.trim_matches('`').to_string()
}

impl Case {
    /// The value of the post property `name`, if the case gives one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.post
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::super::set::{query_matches, PostFields};
    use super::*;

    #[test]
    fn every_case_of_the_document_holds() {
        let cases = cases();
        assert!(cases.len() >= 60, "only {} cases", cases.len());
        let mut wrong = Vec::new();
        for case in &cases {
            let post = PostFields {
                text: &case.text,
                author: case.get("author").unwrap_or("someone"),
                platform: case.get("platform").unwrap_or("twitter"),
                lang: case.get("lang"),
                country: case.get("country"),
                city: case.get("city"),
                product: case.get("product"),
                channel: case.get("channel"),
                url: case.get("url"),
            };
            match query_matches(&case.query, &post) {
                Ok(m) if m == case.matches => {}
                Ok(m) => wrong.push(format!("`{}` on `{}`: {m}", case.query, case.text)),
                Err(e) => wrong.push(format!("`{}` refused: {e}", case.query)),
            }
        }
        assert!(
            wrong.is_empty(),
            "{} cases fail:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}
