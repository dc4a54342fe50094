//! Temporary stand-in until the generator lands.
#![allow(missing_docs)]
use crate::models::*;
pub struct GeneratorOptions {
    pub seed: u64,
    pub posts_per_sec: f64,
    pub engagements: bool,
    pub start: chrono::DateTime<chrono::Utc>,
    pub id_prefix: String,
}
pub struct Generator {
    o: GeneratorOptions,
    n: u64,
}
impl Generator {
    pub fn new(o: GeneratorOptions) -> Self {
        Self { o, n: 0 }
    }
    pub fn next_event(&mut self) -> Event {
        self.n += 1;
        Event::Post(Post {
            id: format!("{}{}", self.o.id_prefix, self.n),
            platform: Platform::Twitter,
            author: Author {
                id: "a".into(),
                followers: 1,
            },
            text: "I love it".into(),
            created_at: self.o.start,
            lang: None,
            geo: None,
            product: None,
            channel: None,
            parent_id: None,
            url: None,
            metrics: None,
        })
    }
}
