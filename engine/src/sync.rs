//! Locks that survive a panic elsewhere.
//!
//! A panic while a `std::sync::Mutex` is held poisons it, and `lock().unwrap()` would then
//! panic in every later caller: one failing job would take the worker, the rate limiter or
//! the robots.txt cache down for good. Every section under the engine's mutexes leaves the
//! data consistent before anything that could panic, so a poisoned lock is still safe to use.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, whether or not a panic poisoned it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
