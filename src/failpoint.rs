//! Failpoints: named places on the paths numbers take, where a test can
//! make something happen at exactly the wrong moment (another instance's
//! lease between a give-back's check and its write, say), the way
//! FoundationDB's and TigerBeetle's simulations place their faults.
//!
//! A failpoint costs one relaxed atomic load while no test has armed any;
//! nothing arms one outside tests.

use crate::unpoisoned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type Action = Arc<dyn Fn(&str) + Send + Sync>;

static ARMED: AtomicBool = AtomicBool::new(false);

fn actions() -> &'static Mutex<HashMap<&'static str, Action>> {
    static ACTIONS: OnceLock<Mutex<HashMap<&'static str, Action>>> = OnceLock::new();
    ACTIONS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs what a test armed at `name`, if anything, telling it `context`
/// (the sequence, say).
pub fn hit(name: &'static str, context: &str) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let action = unpoisoned::lock(actions()).get(name).cloned();
    if let Some(action) = action {
        action(context);
    }
}

/// Makes `name` run `action` every time it is hit, until [`disarm`]. For
/// tests (each test of nextest runs in a process of its own).
#[doc(hidden)]
pub fn arm(name: &'static str, action: impl Fn(&str) + Send + Sync + 'static) {
    unpoisoned::lock(actions()).insert(name, Arc::new(action));
    ARMED.store(true, Ordering::Relaxed);
}

/// Stops `name` from running anything.
#[doc(hidden)]
pub fn disarm(name: &'static str) {
    let mut actions = unpoisoned::lock(actions());
    actions.remove(name);
    ARMED.store(!actions.is_empty(), Ordering::Relaxed);
}

/// The failpoints PEZ has, so tests name them without typos.
pub mod points {
    /// In a give-back, holding the sequence's exclusive lock, after the
    /// store's position was read and before it is moved back.
    pub const GIVE_BACK_CHECKED: &str = "give_back.checked";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn an_armed_point_runs_its_action_until_disarmed() {
        static HITS: AtomicU32 = AtomicU32::new(0);
        hit("test.point", "x");
        arm("test.point", |context| {
            assert_eq!(context, "x");
            HITS.fetch_add(1, Ordering::SeqCst);
        });
        hit("test.point", "x");
        hit("test.other", "y");
        hit("test.point", "x");
        disarm("test.point");
        hit("test.point", "x");
        assert_eq!(HITS.load(Ordering::SeqCst), 2);
    }
}
