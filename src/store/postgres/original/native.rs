//! The original PEZ's sequences as PostgreSQL knows them: which one is the
//! original's (the first on the user's search path), what PEZ recorded
//! when it took one over, and whether it is shaped and owned as PEZ needs.

use super::super::catalog::LEASE_STEP;
use super::super::catalog::{self, stands_after};
use super::{increment, refused};
use crate::sequence::SequenceSpec;
use crate::store::TxError;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

/// A native sequence and what PEZ needs to know of it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Native {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub schema: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub increment_by: i64,
    #[diesel(sql_type = BigInt)]
    pub min_value: i64,
    #[diesel(sql_type = BigInt)]
    pub max_value: i64,
    #[diesel(sql_type = Bool)]
    pub cycle: bool,
    /// Whether this user owns it (or is a member of the owning role).
    #[diesel(sql_type = Bool)]
    pub owned: bool,
    #[diesel(sql_type = Text)]
    pub owner: String,
    /// Whether this user may read where it stands.
    #[diesel(sql_type = Bool)]
    pub readable: bool,
    /// Whether this user may use its schema (reach it at all).
    #[diesel(sql_type = Bool)]
    pub schema_usable: bool,
    /// Its comment, where PEZ writes the mark of a take-over.
    #[diesel(sql_type = Nullable<Text>)]
    pub comment: Option<String>,
}

impl Native {
    /// `schema.name`, for people.
    pub fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Quoted, for SQL.
    pub fn relation(&self) -> String {
        catalog::relation(&self.schema, &self.name)
    }

    /// Sets its increment (and a cache of 1) for the rest of the
    /// transaction, which takes its exclusive lock and rewrites its storage
    /// (a `setval()` after it rolls back with the transaction). While the
    /// ALTER waits for the lock, every nextval() of the original's nodes
    /// waits behind it: so it waits briefly (an original's transaction left
    /// open holds the lock; the caller tries again later).
    pub fn set_increment(&self, conn: &mut PgConnection, increment: i64) -> QueryResult<()> {
        diesel::sql_query("SELECT set_config('lock_timeout', '200ms', true)").execute(conn)?;
        diesel::sql_query(format!(
            "ALTER SEQUENCE {} INCREMENT BY {increment} CACHE 1",
            self.relation()
        ))
        .execute(conn)?;
        Ok(())
    }

    /// Where it stands: the first number of the next nextval()'s block.
    /// Read under its exclusive lock, it stays true until the commit.
    pub fn stands(&self, conn: &mut PgConnection, spec: &SequenceSpec) -> QueryResult<Option<i64>> {
        let (last_value, is_called) = catalog::position(conn, &self.relation())?;
        Ok(stands_after(
            spec,
            self.increment_by.unsigned_abs().max(1),
            last_value,
            is_called,
        ))
    }

    /// Writes `mark` into its comment: how PEZ knows it again, even in a
    /// database restored from a dump (pg_dump keeps comments), and not in
    /// one dropped and created again.
    pub fn set_mark(&self, conn: &mut PgConnection, mark: &str) -> QueryResult<()> {
        diesel::sql_query(format!(
            "COMMENT ON SEQUENCE {} IS '{}'",
            self.relation(),
            mark.replace('\'', "''")
        ))
        .execute(conn)?;
        Ok(())
    }
}

/// Every sequence called `relname`, in any schema.
pub fn natives(conn: &mut PgConnection, relname: &str) -> QueryResult<Vec<Native>> {
    diesel::sql_query(
        "SELECT c.oid::bigint AS oid, n.nspname::text AS schema, c.relname::text AS name, \
                s.seqincrement AS increment_by, s.seqmin AS min_value, s.seqmax AS max_value, \
                s.seqcycle AS cycle, pg_has_role(c.relowner, 'USAGE') AS owned, \
                pg_get_userbyid(c.relowner)::text AS owner, \
                has_sequence_privilege(c.oid, 'SELECT') AS readable, \
                has_schema_privilege(n.oid, 'USAGE') AS schema_usable, \
                obj_description(c.oid, 'pg_class') AS comment \
           FROM pg_class c \
           JOIN pg_namespace n ON n.oid = c.relnamespace \
           JOIN pg_sequence s ON s.seqrelid = c.oid \
          WHERE c.relname = $1 AND c.relkind = 'S'",
    )
    .bind::<Text, _>(relname)
    .load(conn)
}

#[derive(QueryableByName)]
struct SearchPath {
    #[diesel(sql_type = Text)]
    search_path: String,
    #[diesel(sql_type = Text)]
    user: String,
}

/// The schemas of a `search_path` setting, in order, as PostgreSQL reads
/// them: comma-separated, double-quoted or not (folded to lower case when
/// not), `$user` standing for the session's user.
fn search_path_schemas(setting: &str, user: &str) -> Vec<String> {
    let mut schemas = Vec::new();
    let mut chars = setting.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let Some(&first) = chars.peek() else {
            return schemas;
        };
        let mut item = String::new();
        let quoted = first == '"';
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                // A doubled quote is one quote; a single one ends the name.
                if c == '"' && chars.next_if_eq(&'"').is_none() {
                    break;
                }
                item.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                item.push(c);
            }
            item = item.trim_end().to_lowercase();
        }
        schemas.push(if item == "$user" {
            user.to_owned()
        } else {
            item
        });
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The original's sequence called `relname`, if this database has one: the
/// first in PEZ's user's search path (the one the original's unqualified
/// `nextval('...')` found, when PEZ uses the original's user). Found
/// whether or not this user may use it, so a user without the rights is
/// stopped, never started beside it. A PEZ sequence of that name (in the
/// schema `pez`, made through the admin API) is not the original's. One
/// that exists only outside the search path stops PEZ too: PEZ cannot tell
/// whether the original used it.
pub fn find_original(conn: &mut PgConnection, relname: &str) -> Result<Option<Native>, TxError> {
    let path = diesel::sql_query(
        "SELECT current_setting('search_path') AS search_path, current_user::text AS user",
    )
    .get_result::<SearchPath>(conn)?;
    let named_by_pez = diesel::sql_query(
        "SELECT count(*) AS count FROM pez.sequences WHERE name = $1 AND relation_name IS NULL",
    )
    .bind::<Text, _>(relname)
    .get_result::<Count>(conn)?
    .count
        > 0;
    let found: Vec<Native> = natives(conn, relname)?
        .into_iter()
        .filter(|n| !(named_by_pez && n.schema == catalog::SCHEMA))
        .collect();
    let path = search_path_schemas(&path.search_path, &path.user);
    if let Some(on_path) = path
        .iter()
        .find_map(|schema| found.iter().find(|n| &n.schema == schema))
    {
        return Ok(Some(on_path.clone()));
    }
    match found.first() {
        None => Ok(None),
        Some(elsewhere) => Err(refused(format!(
            "this database holds {}, which is not on this user's search_path ({}): PEZ cannot \
             tell whether the original PEZ took its numbers from it. If it did, put its schema \
             on the user's search_path (ALTER ROLE ... SET search_path = ...) and start PEZ \
             again; if not, rename or drop it",
            elsewhere.shown(),
            path.join(", ")
        ))),
    }
}

#[derive(QueryableByName)]
struct Mapping {
    #[diesel(sql_type = Nullable<Text>)]
    relation_schema: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    relation_name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    relation_oid: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    relation_mark: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    relation_floor: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    relation_floor_generation: Option<i64>,
    #[diesel(sql_type = BigInt)]
    generation: i64,
}

/// The original's sequence `pez.sequences` says a PEZ sequence continues.
pub struct Recorded {
    pub schema: String,
    pub name: String,
    /// The oid it had when an earlier PEZ took it over and recorded no
    /// mark (`None`: an operator cleared it to accept the one there now).
    pub oid: Option<i64>,
    /// The mark PEZ wrote into its comment when it took it over.
    pub mark: Option<String>,
    /// Where it stood when PEZ took it over (or last started on it after
    /// moving it), if PEZ has not moved it since (the generation recorded
    /// with it is still its generation). `None`: taken over by an older
    /// release, or restarted or handed back since.
    pub floor: Option<i64>,
}

impl Recorded {
    pub fn shown(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Whether `native` is the sequence recorded: it carries the mark, or
    /// (recorded before marks) the oid.
    pub fn is(&self, native: &Native) -> bool {
        match (&self.mark, self.oid) {
            (Some(mark), _) => native.comment.as_deref() == Some(mark.as_str()),
            (None, Some(oid)) => native.oid == oid,
            (None, None) => true,
        }
    }

    /// The sequence there now, if any; refused if it is not the one PEZ
    /// took over (dropped and made again since, at 1 say: its numbers may
    /// repeat ones issued).
    pub fn find(&self, conn: &mut PgConnection, name: &str) -> Result<Option<Native>, TxError> {
        let there = natives(conn, &self.name)?
            .into_iter()
            .find(|n| n.schema == self.schema);
        match &there {
            Some(native) if !self.is(native) => Err(refused(format!(
                "{} is not the sequence {name} took over: it was dropped and created again \
                 since, and may issue numbers issued before. With every PEZ stopped, make sure \
                 it stands past every number issued (SELECT setval(...)), then accept it: \
                 UPDATE pez.sequences SET relation_oid = NULL, relation_mark = NULL, \
                 generation = nextval('pez.generations') WHERE name = '{name}'",
                self.shown()
            ))),
            _ => Ok(there),
        }
    }
}

/// What `pez.sequences` records for `name`, if it continues the original's.
pub fn recorded(conn: &mut PgConnection, name: &str) -> QueryResult<Option<Recorded>> {
    let row = diesel::sql_query(
        "SELECT relation_schema, relation_name, relation_oid, relation_mark, relation_floor, \
                relation_floor_generation, generation \
           FROM pez.sequences WHERE name = $1",
    )
    .bind::<Text, _>(name)
    .get_result::<Mapping>(conn)
    .optional()?;
    Ok(row.and_then(|m| {
        let (schema, name) = m.relation_schema.zip(m.relation_name)?;
        Some(Recorded {
            schema,
            name,
            oid: m.relation_oid,
            mark: m.relation_mark,
            floor: m
                .relation_floor
                .filter(|_| m.relation_floor_generation == Some(m.generation)),
        })
    }))
}

/// What a sequence of the original must look like for PEZ to continue it:
/// the range and cycle of `spec`, counting in its direction by one (as the
/// original made it) or by PEZ's step (taken over already).
pub fn check_shape(native: &Native, spec: &SequenceSpec) -> Result<(), TxError> {
    let sign = increment(spec, 1);
    let step_ok = [sign, increment(spec, LEASE_STEP)].contains(&native.increment_by);
    if step_ok && native.min_value == spec.min && native.max_value == spec.max && native.cycle {
        return Ok(());
    }
    Err(refused(format!(
        "{} (the original PEZ's sequence, which {} continues) is INCREMENT BY {} MINVALUE {} \
         MAXVALUE {} {}, not the original's INCREMENT BY {sign} MINVALUE {} MAXVALUE {} CYCLE; \
         PEZ will not start beside it (that could issue its numbers again): make it so again \
         with ALTER SEQUENCE, or ask the PEZ team",
        native.shown(),
        spec.name,
        native.increment_by,
        native.min_value,
        native.max_value,
        if native.cycle { "CYCLE" } else { "NO CYCLE" },
        spec.min,
        spec.max,
    )))
}

/// What a user that may not touch the original's sequence is told to run.
#[derive(Debug, Clone, Copy)]
pub enum Remedy {
    /// Take it over: make the user its owner, or let the owner do it.
    TakeOver,
    /// Hand it back: only its owner may.
    HandBack,
}

/// Refuses unless this user owns `native` and may use its schema, which
/// altering it (and, later, giving blocks back to it) needs.
pub fn check_owned(native: &Native, remedy: Remedy) -> Result<(), TxError> {
    let relation = native.relation();
    let owner = &native.owner;
    if !native.schema_usable {
        return Err(refused(format!(
            "PEZ needs {} (the original PEZ's), and this user may not use its schema: run \
             `GRANT USAGE ON SCHEMA {} TO <pez user>;`",
            native.shown(),
            catalog::quote(&native.schema),
        )));
    }
    if native.owned {
        return Ok(());
    }
    Err(refused(match remedy {
        Remedy::TakeOver => format!(
            "PEZ must take over {}, which belongs to {owner}, and this user may not (it must \
             own it): as {owner} run `ALTER SEQUENCE {relation} OWNER TO <pez user>;`, or run \
             `pez migrate` with these settings as {owner}",
            native.shown()
        ),
        Remedy::HandBack => format!(
            "only the owner of {} ({owner}) may hand it back: run `pez handback` with these \
             settings as {owner}",
            native.shown()
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn search_paths_are_read_as_postgresql_reads_them() {
        assert_eq!(
            search_path_schemas("\"$user\", public", "pez"),
            vec!["pez", "public"]
        );
        assert_eq!(
            search_path_schemas("  Legacy ,\"Odd \"\"one\"\"\",public", "u"),
            vec!["legacy", "Odd \"one\"", "public"]
        );
        assert_eq!(search_path_schemas("$user", "u"), vec!["u"]);
        assert!(search_path_schemas("", "u").is_empty());
    }

    fn native(increment_by: i64, min: i64, max: i64, cycle: bool) -> Native {
        Native {
            oid: 1,
            schema: "public".into(),
            name: "forward_seq".into(),
            increment_by,
            min_value: min,
            max_value: max,
            cycle,
            owned: true,
            owner: "pez".into(),
            readable: true,
            schema_usable: true,
            comment: None,
        }
    }

    #[test]
    fn only_sequences_shaped_as_the_originals_are_continued() {
        let forward = SequenceSpec::forward();
        let reverse = SequenceSpec::reverse();
        assert!(check_shape(&native(1, 1, i64::MAX, true), &forward).is_ok());
        assert!(check_shape(&native(1000, 1, i64::MAX, true), &forward).is_ok());
        assert!(check_shape(&native(-1, 1, i64::MAX, true), &reverse).is_ok());
        assert!(check_shape(&native(-1000, 1, i64::MAX, true), &reverse).is_ok());
        for wrong in [
            native(-1, 1, i64::MAX, true),
            native(5, 1, i64::MAX, true),
            native(1, 0, i64::MAX, true),
            native(1, 1, i32::MAX.into(), true),
            native(1, 1, i64::MAX, false),
        ] {
            let Err(TxError::Store(StoreError::Refused(why))) = check_shape(&wrong, &forward)
            else {
                panic!("{wrong:?} accepted");
            };
            assert!(why.contains("public.forward_seq"), "{why}");
        }
    }

    #[test]
    fn a_recorded_sequence_is_known_by_its_mark_else_by_its_oid() {
        let marked = Recorded {
            schema: "public".into(),
            name: "forward_seq".into(),
            oid: Some(1),
            mark: Some("PEZ continues this sequence as forward (m1)".into()),
            floor: None,
        };
        let mut restored = native(1000, 1, i64::MAX, true);
        restored.oid = 99;
        restored.comment = marked.mark.clone();
        assert!(marked.is(&restored), "a dump keeps the mark, not the oid");
        assert!(
            !marked.is(&native(1, 1, i64::MAX, true)),
            "made again: no mark"
        );
        let by_oid = Recorded {
            mark: None,
            ..marked
        };
        assert!(by_oid.is(&native(1, 1, i64::MAX, true)));
        assert!(!by_oid.is(&restored));
    }
}
