//! The daemon's one way to take a mutex.
//!
//! A panic while a lock is held poisons it; everything these mutexes guard (tables, caches,
//! counters) stays consistent at every await-free step that holds them, so the daemon goes on
//! with the data as it is rather than failing every later request.

use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
