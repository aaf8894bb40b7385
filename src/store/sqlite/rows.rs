//! The embedded store's table of sequences, and the statements on it. Each
//! is called inside one `IMMEDIATE` transaction of [`super::SqliteStore`].

use super::super::{Position, SequenceState, StoreError, TxError, stored_spec};
use crate::sequence::{Direction, SequenceSpec};
use diesel::prelude::*;

diesel::table! {
    sequences (name) {
        name -> Text,
        ascending -> Bool,
        min_value -> BigInt,
        max_value -> BigInt,
        cycle -> Bool,
        next_value -> Nullable<BigInt>,
        start_value -> BigInt,
        mode -> Text,
        generation -> BigInt,
        laps -> BigInt,
        max_lease -> Nullable<BigInt>,
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sequences, check_for_backend(diesel::sqlite::Sqlite))]
struct SequenceRow {
    name: String,
    ascending: bool,
    min_value: i64,
    max_value: i64,
    cycle: bool,
    next_value: Option<i64>,
    start_value: i64,
    mode: String,
    generation: i64,
    laps: i64,
    max_lease: Option<i64>,
}

impl From<SequenceRow> for SequenceState {
    fn from(row: SequenceRow) -> Self {
        SequenceState {
            spec: stored_spec(
                row.name,
                row.ascending,
                (row.min_value, row.max_value),
                row.start_value,
                row.cycle,
                &row.mode,
                row.max_lease,
            ),
            next_value: row.next_value,
            generation: row.generation,
            laps: row.laps,
            continues: None,
        }
    }
}

/// A failure of SQLite itself: nothing changed (the transaction rolled back).
pub fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e,
            TxError::Db(e) | TxError::Unconfirmed(e) => unavailable(e),
        }
    }
}

/// One sequence.
pub fn load(conn: &mut SqliteConnection, name: &str) -> Result<SequenceState, TxError> {
    sequences::table
        .find(name)
        .select(SequenceRow::as_select())
        .first(conn)
        .optional()?
        .map(SequenceState::from)
        .ok_or_else(|| TxError::Store(StoreError::UnknownSequence(name.to_owned())))
}

/// Every sequence, by name.
pub fn list(conn: &mut SqliteConnection) -> Result<Vec<SequenceState>, StoreError> {
    let rows = sequences::table
        .select(SequenceRow::as_select())
        .order(sequences::name)
        .load(conn)
        .map_err(unavailable)?;
    Ok(rows.into_iter().map(SequenceState::from).collect())
}

/// Every sequence's name and generation.
pub fn generations(conn: &mut SqliteConnection) -> Result<Vec<(String, i64)>, StoreError> {
    sequences::table
        .select((sequences::name, sequences::generation))
        .load(conn)
        .map_err(unavailable)
}

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last: i64,
}

/// The next value of the store's one generation counter.
fn next_generation(conn: &mut SqliteConnection) -> Result<i64, TxError> {
    Ok(diesel::sql_query(
        "UPDATE generation_counter SET last = last + 1 WHERE id = 1 RETURNING last",
    )
    .get_result::<Counter>(conn)?
    .last)
}

/// Gives `name` a new generation: instances drop what they hold of it.
pub fn new_generation(conn: &mut SqliteConnection, name: &str) -> Result<(), TxError> {
    let generation = next_generation(conn)?;
    diesel::update(sequences::table.find(name))
        .set(sequences::generation.eq(generation))
        .execute(conn)?;
    Ok(())
}

/// Where the next reservation starts.
pub fn set_next(conn: &mut SqliteConnection, name: &str, next: Option<i64>) -> Result<(), TxError> {
    diesel::update(sequences::table.find(name))
        .set(sequences::next_value.eq(next))
        .execute(conn)?;
    Ok(())
}

/// Counts a lap begun: the sequence handed out its origin.
pub fn begin_lap(conn: &mut SqliteConnection, name: &str) -> Result<i64, TxError> {
    Ok(diesel::sql_query(
        "UPDATE sequences SET laps = laps + 1 WHERE name = ? RETURNING laps AS last",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result::<Counter>(conn)?
    .last)
}

/// Raises the count of laps to `laps` (an import's, from its source).
pub fn raise_laps(conn: &mut SqliteConnection, name: &str, laps: i64) -> Result<(), TxError> {
    diesel::update(sequences::table.find(name))
        .set(sequences::laps.eq(laps))
        .filter(sequences::laps.lt(laps))
        .execute(conn)?;
    Ok(())
}

/// A new sequence, standing `at`, with a fresh generation.
pub fn insert(
    conn: &mut SqliteConnection,
    spec: &SequenceSpec,
    at: Position,
) -> Result<(), TxError> {
    let generation = next_generation(conn)?;
    diesel::insert_into(sequences::table)
        .values(SequenceRow {
            name: spec.name.clone(),
            ascending: spec.direction == Direction::Ascending,
            min_value: spec.min,
            max_value: spec.max,
            cycle: spec.cycle,
            next_value: at.next,
            start_value: spec.start,
            mode: spec.mode.as_str().to_owned(),
            generation,
            laps: at.laps,
            max_lease: i64::try_from(spec.max_lease).ok(),
        })
        .execute(conn)?;
    Ok(())
}

/// Removes a sequence.
pub fn delete(conn: &mut SqliteConnection, name: &str) -> Result<(), TxError> {
    diesel::delete(sequences::table.find(name)).execute(conn)?;
    Ok(())
}
