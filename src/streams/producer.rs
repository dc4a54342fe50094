//! Appending events to the stream, as every producer does: `{"event": <json>}` entries,
//! pipelined.

use fred::prelude::*;

/// Most events sent in one pipelined round trip.
pub const MAX_PIPELINE: usize = 500;
/// Appends encoded events to `stream` as `{"event": json}` entries in one pipelined round
/// trip, the format every producer uses; returns the entry ids in order.
pub async fn xadd_events<S: AsRef<str>>(
    redis: &Client,
    stream: &str,
    events: &[S],
) -> Result<Vec<String>, Error> {
    let pipeline = redis.pipeline();
    for json in events {
        let _: () = pipeline
            .xadd(
                stream,
                false,
                None::<()>,
                "*",
                vec![("event", json.as_ref())],
            )
            .await?;
    }
    pipeline.all().await
}
