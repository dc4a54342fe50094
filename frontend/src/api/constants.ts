// Enumerations the UI lists, kept apart from the schemas so the bundle does not carry the
// schema library (the app only needs the schemas' types).
export const platforms = [
  "twitter", "reddit", "instagram", "tiktok", "youtube", "bluesky", "mastodon", "other",
] as const;
export const windows = ["1m", "5m", "1h", "24h"] as const;
