//! The embedded store against its promises.

use super::*;
use crate::sequence::{Direction, Mode};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "pez-sqlite-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn generation(store: &SqliteStore, name: &str) -> i64 {
    store
        .generations()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, generation)| generation)
        .unwrap_or_else(|| panic!("no sequence {name}"))
}

fn stamp(store: &SqliteStore, name: &str) -> Stamp {
    let state = store
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.spec.name == name)
        .unwrap_or_else(|| panic!("no sequence {name}"));
    Stamp {
        generation: state.generation,
        laps: state.laps,
    }
}

/// The number a reservation of one hands out next (it takes it).
fn next_number(store: &SqliteStore, name: &str) -> i64 {
    store
        .reserve(name, generation(store, name), 1)
        .unwrap()
        .blocks()[0]
        .first
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.0, Duration::from_millis(200)).unwrap()
}

#[test]
fn a_fresh_store_has_forward_and_reverse_at_their_origins() {
    let dir = TempDir::new("fresh");
    let states = open(&dir).list().unwrap();
    let positions: Vec<_> = states
        .iter()
        .map(|s| (s.spec.clone(), s.next_value))
        .collect();
    assert_eq!(
        positions,
        vec![
            (SequenceSpec::forward(), Some(1)),
            (SequenceSpec::reverse(), Some(i64::MAX)),
        ]
    );
}

#[test]
fn leases_follow_each_other_and_survive_reopening() {
    let dir = TempDir::new("leases");
    let store = open(&dir);
    assert_eq!(
        store
            .reserve("forward", generation(&store, "forward"), 10)
            .unwrap()
            .blocks()[0]
            .first,
        1
    );
    assert_eq!(
        store
            .reserve("forward", generation(&store, "forward"), 10)
            .unwrap()
            .blocks()[0]
            .first,
        11
    );
    let down = store
        .reserve("reverse", generation(&store, "reverse"), 5)
        .unwrap()
        .blocks()[0];
    assert_eq!((down.first, down.last), (i64::MAX, i64::MAX - 4));
    drop(store);
    let store = open(&dir);
    assert_eq!(next_number(&store, "forward"), 21);
    assert_eq!(next_number(&store, "reverse"), i64::MAX - 5);
}

#[test]
fn a_give_back_is_refused_once_the_sequence_moved_on() {
    let dir = TempDir::new("give-back");
    let store = open(&dir);
    let first = store
        .reserve("forward", generation(&store, "forward"), 10)
        .unwrap()
        .blocks()[0];
    let (_, rest) = first.split_front(4);
    let rest = rest.unwrap();
    store
        .reserve("forward", generation(&store, "forward"), 10)
        .unwrap();
    assert!(
        !store
            .give_back("forward", stamp(&store, "forward"), rest)
            .unwrap()
    );
    let next = store
        .reserve("forward", generation(&store, "forward"), 1)
        .unwrap()
        .blocks()[0];
    assert_eq!(next.first, 21, "a refused give-back must leave a gap");

    let latest = store
        .reserve("forward", generation(&store, "forward"), 10)
        .unwrap()
        .blocks()[0];
    let (_, rest) = latest.split_front(3);
    assert!(
        store
            .give_back("forward", stamp(&store, "forward"), rest.unwrap())
            .unwrap()
    );
    assert_eq!(next_number(&store, "forward"), 25);
}

#[test]
fn a_restart_outside_the_range_or_of_an_unknown_sequence_is_refused() {
    let dir = TempDir::new("restart");
    let store = open(&dir);
    assert!(matches!(
        store.restart("forward", 0, Consent::FORWARD),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.restart("nope", 5, Consent::FORWARD),
        Err(StoreError::UnknownSequence(_))
    ));
    store
        .restart("forward", i64::MAX, Consent::FORWARD)
        .unwrap();
    let block = store
        .reserve("forward", generation(&store, "forward"), 100)
        .unwrap()
        .blocks()[0];
    assert_eq!((block.first, block.len()), (i64::MAX, 1));
    assert_eq!(next_number(&store, "forward"), 1);
}

/// The durability promise rests on these two settings: WAL with
/// synchronous=FULL fsyncs the log at every commit.
#[test]
fn every_connection_commits_with_fsync() {
    #[derive(QueryableByName)]
    struct Pragma {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let dir = TempDir::new("durable");
    let store = open(&dir);
    for _ in 0..3 {
        let mut conn = store.conn().unwrap();
        let read = |conn: &mut SqliteConnection, pragma: &str| {
            diesel::sql_query(format!("SELECT CAST({pragma} AS TEXT) AS value"))
                .get_result::<Pragma>(conn)
                .unwrap()
                .value
        };
        // synchronous: 2 is FULL.
        assert_eq!(
            read(&mut conn, "(SELECT synchronous FROM pragma_synchronous)"),
            "2"
        );
        assert_eq!(
            read(&mut conn, "(SELECT journal_mode FROM pragma_journal_mode)"),
            "wal"
        );
    }
}

#[test]
fn sequences_are_created_once_and_deleted_unless_built_in() {
    let dir = TempDir::new("create");
    let store = open(&dir);
    let spec = SequenceSpec::new(
        "orders",
        Direction::Descending,
        10,
        20,
        Some(15),
        false,
        Mode::Strict,
    )
    .unwrap();
    assert_eq!(
        store.create(&spec, Position::fresh(&spec)).unwrap(),
        Created::New
    );
    assert_eq!(
        store.create(&spec, Position::fresh(&spec)).unwrap(),
        Created::Existing
    );
    let other = SequenceSpec {
        cycle: true,
        ..spec.clone()
    };
    assert!(matches!(
        store.create(&other, Position::fresh(&other)),
        Err(StoreError::Conflict(_))
    ));
    let block = store
        .reserve("orders", generation(&store, "orders"), 100)
        .unwrap()
        .blocks()[0];
    assert_eq!(
        block.iter().collect::<Vec<_>>(),
        (10..=15).rev().collect::<Vec<_>>()
    );
    assert!(matches!(
        store.reserve("orders", generation(&store, "orders"), 1),
        Err(StoreError::Exhausted(_))
    ));
    let listed = store.list().unwrap();
    let orders = listed.iter().find(|s| s.spec.name == "orders").unwrap();
    assert_eq!((orders.spec.clone(), orders.next_value), (spec, None));

    assert!(matches!(
        store.delete("forward"),
        Err(StoreError::Builtin(_))
    ));
    store.delete("orders").unwrap();
    assert!(matches!(
        store.delete("orders"),
        Err(StoreError::UnknownSequence(_))
    ));
}

#[test]
fn generations_never_repeat_not_even_for_a_name_created_again() {
    let dir = TempDir::new("generation");
    let store = open(&dir);
    let before = generation(&store, "forward");
    store.restart("forward", 7, Consent::FORWARD).unwrap();
    let after = generation(&store, "forward");
    assert!(after > before);
    let spec = SequenceSpec::new(
        "orders",
        Direction::Ascending,
        1,
        100,
        None,
        true,
        Mode::Leased,
    )
    .unwrap();
    let mut seen = vec![before, after];
    for _ in 0..3 {
        store.create(&spec, Position::fresh(&spec)).unwrap();
        let (_, generation) = store
            .generations()
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == "orders")
            .unwrap();
        assert!(
            !seen.contains(&generation),
            "generation {generation} came back"
        );
        seen.push(generation);
        store.delete("orders").unwrap();
    }
}

#[test]
fn what_was_reserved_under_an_old_generation_is_neither_reserved_nor_given_back() {
    let dir = TempDir::new("stale");
    let store = open(&dir);
    let old = generation(&store, "forward");
    let reserved = store.reserve("forward", old, 10).unwrap();
    let block = reserved.blocks()[0];
    let old_stamp = Stamp {
        generation: old,
        laps: reserved.laps(),
    };
    store.restart("forward", 11, Consent::FORWARD).unwrap();
    assert!(matches!(
        store.reserve("forward", old, 10),
        Err(StoreError::Stale(_))
    ));
    let (_, rest) = block.split_front(5);
    assert!(
        !store
            .give_back("forward", old_stamp, rest.unwrap())
            .unwrap(),
        "a block of the old generation is refused even where it would fit"
    );
    let now = generation(&store, "forward");
    assert_eq!(
        store.reserve("forward", now, 1).unwrap().blocks()[0].first,
        11
    );
}

#[test]
fn a_restart_moves_forward_only_unless_asked_to_move_back() {
    let dir = TempDir::new("backward");
    let store = open(&dir);
    store
        .reserve("forward", generation(&store, "forward"), 100)
        .unwrap();
    assert!(matches!(
        store.restart("forward", 50, Consent::FORWARD),
        Err(StoreError::Backward {
            next: Some(101),
            ..
        })
    ));
    assert_eq!(next_number(&store, "forward"), 101);
    assert!(matches!(
        store.restart("forward", 200, Consent::FORWARD),
        Err(StoreError::EarlyWrap { .. })
    ));
    store
        .restart(
            "forward",
            200,
            Consent {
                backward: false,
                early_wrap: true,
            },
        )
        .unwrap();
    store
        .restart(
            "forward",
            50,
            Consent {
                backward: true,
                early_wrap: false,
            },
        )
        .unwrap();
    assert_eq!(next_number(&store, "forward"), 50);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = TempDir::new("second");
    let _store = open(&dir);
    let err = SqliteStore::open(&dir.0, Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, OpenError::Locked(_)), "{err}");
}
