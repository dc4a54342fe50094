//! Locking the HTTP layer's mutexes, which hold budgets, counters and places: a holder that
//! panicked leaves them usable as they stand, so a poisoned lock is taken rather than failing
//! every request after it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex` locked, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
