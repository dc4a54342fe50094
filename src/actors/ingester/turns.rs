//! Batches take their turn at the story desk in the order they were read. Analysis runs
//! batches side by side and finishes them in any order; a story is founded by the first posts
//! alike that the desk sees, so a later batch placed first could found a story with posts an
//! earlier batch would have joined to one already live (replays of crisis collections through
//! the server scored AMI 0.70 with 8 batches in flight, against 0.81 one at a time).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// The longest a batch waits for earlier ones: a batch stuck in retries (its analysis failed,
/// the store is down) must not hold every later one back.
pub const MAX_TURN_WAIT: Duration = Duration::from_secs(5);

/// Which batch numbers (from the read order) have taken their turn.
#[derive(Default)]
pub struct Turns {
    state: Mutex<Passed>,
    moved: Notify,
}

#[derive(Default)]
struct Passed {
    /// Every batch below it has passed.
    frontier: u64,
    /// Batches at or above the frontier that passed.
    beyond: BTreeSet<u64>,
}

impl Turns {
    /// Batch `n` has taken its turn, or gave it up; passing again changes nothing.
    pub fn pass(&self, n: u64) {
        {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if n < s.frontier {
                return;
            }
            s.beyond.insert(n);
            loop {
                let next = s.frontier;
                if !s.beyond.remove(&next) {
                    break;
                }
                s.frontier += 1;
            }
        }
        self.moved.notify_waiters();
    }

    /// Waits until every batch before `n` has passed, or `max`: whether it was `n`'s turn.
    pub async fn wait(&self, n: u64, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            // Registered before the check, so a pass between the two is not missed.
            moved.as_mut().enable();
            if self
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .frontier
                >= n
            {
                return true;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[actix_rt::test]
    async fn a_batch_waits_for_every_earlier_one_and_no_longer_than_told() {
        let turns = Arc::new(Turns::default());
        assert!(turns.wait(0, Duration::ZERO).await);
        // Batch 2 waits for 0 and 1, which pass out of order.
        let waiter = {
            let turns = turns.clone();
            actix_rt::spawn(async move { turns.wait(2, Duration::from_secs(60)).await })
        };
        turns.pass(1);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        turns.pass(0);
        assert!(waiter.await.unwrap());
        // Passing twice, or after the frontier, changes nothing.
        turns.pass(0);
        assert!(turns.wait(2, Duration::ZERO).await);
        turns.pass(2);
        // Batch 4 is not its turn while 3 has not passed: it gives up after its wait.
        assert!(!turns.wait(4, Duration::from_millis(20)).await);
        turns.pass(4);
        turns.pass(3);
        assert!(turns.wait(5, Duration::ZERO).await);
    }
}
