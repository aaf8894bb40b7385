//! Locks whose poisoning is moot.
//!
//! A `std::sync::Mutex` is poisoned when a thread panics while holding it.
//! Every structure PEZ guards this way is left consistent by each method
//! that touches it (a panic cannot interrupt a half-made change), so a
//! poisoned lock still guards good data: these helpers take it anyway
//! instead of spreading `unwrap_or_else(|p| p.into_inner())` everywhere.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes `lock` for reading, poisoned or not.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes `lock` for writing, poisoned or not.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
