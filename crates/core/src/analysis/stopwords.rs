//! English words that say nothing about what a post is about: left out of trending terms and
//! of the words that name a story, each of which adds words of its own.

pub const ENGLISH: &[&str] = &[
    "the", "and", "for", "you", "your", "are", "was", "were", "this", "that", "with", "have",
    "has", "had", "not", "but", "just", "all", "any", "can", "could", "would", "should", "will",
    "they", "them", "their", "there", "what", "when", "where", "which", "who", "why", "how",
    "from", "about", "into", "out", "our", "ours", "its", "it's", "i'm", "dont", "don't", "can't",
    "been", "being", "than", "then", "too", "very", "more", "most", "some", "only", "also", "got",
    "get", "one", "over", "again", "still", "even", "really", "much", "many", "like", "now",
    "today", "her", "him", "his", "she", "let", "let's", "yet", "does", "did", "these", "those",
    "because", "after", "before", "while", "here", "off", "via", "new", "amp", "http", "https",
    "www", "com",
];
