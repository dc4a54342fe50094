//! Stories: what a stream of posts is about, found live. Posts that say alike things close
//! together in event time become a story, which grows, absorbs its duplicates and fades
//! (docs/stories.md).

pub mod features;
pub mod tracker;

pub use tracker::{
    AnnouncedStory, Representative, StoryEvent, StoryId, StorySettings, StorySnapshot, StoryTracker,
};
