//! `pulse eval`: scores on labelled data, each printed beside a simple baseline measured in
//! the same run.

pub mod forecast;
pub mod language;
pub mod sentiment;
pub mod stories;
pub mod virality;
