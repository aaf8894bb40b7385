//! Property tests that feed the parsers of what a client sends (the query,
//! the path, the JSON bodies of the admin API) arbitrary input: none may
//! panic, and each gives a valid result or a 4xx error.
//!
//! `make test` runs them with proptest's default number of cases (256, or
//! `PROPTEST_CASES`); `make fuzz` runs them with many more, for a bounded
//! time, and CI runs `make fuzz`. A failure is kept by proptest in
//! `proptest-regressions/` and found again first on the next run.

use super::query;
use super::resource_of;
use super::sequences::{RestartBody, Target, parse_body, spec_of};
use super::serve::route_of;
use crate::sequence::{MAX_NAME_LEN, check_name};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Text made mostly of what matters to the parsers: separators, escapes,
/// digits, signs and the words they look for, with any character now and
/// then.
fn query_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("count".to_owned()),
        Just("format".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just("+".to_owned()),
        Just("%".to_owned()),
        "%[0-9a-fA-FgG]{0,2}",
        "[0-9]{1,25}",
        "[-+. a-z]",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Paths made mostly of the segments the router knows, with any segment
/// now and then.
fn path_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("v1".to_owned()),
        Just("v2".to_owned()),
        Just("forward".to_owned()),
        Just("reverse".to_owned()),
        Just("sequences".to_owned()),
        Just("next".to_owned()),
        Just("lease".to_owned()),
        Just("restart".to_owned()),
        Just(String::new()),
        Just("%2e%2e".to_owned()),
        Just("%2F".to_owned()),
        "[a-z0-9_-]{1,70}",
        "(%[0-9a-fA-F]{2}){1,4}",
        any::<String>(),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|segments| format!("/{}", segments.join("/")))
}

/// A JSON value of the kinds a body's fields might be given.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), Just(1)]
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("ascending"),
            Just("descending"),
            Just("leased"),
            Just("strict"),
            Just(""),
        ]
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
    ]
}

/// A JSON object of the admin API's fields (and a stranger now and then).
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("direction"),
        Just("min"),
        Just("max"),
        Just("start"),
        Just("cycle"),
        Just("mode"),
        Just("value"),
        Just("allow_backward"),
        Just("allow_early_wrap"),
        Just("unknown"),
    ];
    prop::collection::vec((field, json_leaf()), 0..7).prop_map(|fields| {
        let object: Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        Value::Object(object).to_string().into_bytes()
    })
}

/// Any bytes, or bytes that are nearly JSON.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_body(),
        json_body().prop_flat_map(|body| {
            let len = body.len();
            (Just(body), 0..=len).prop_map(|(mut body, cut)| {
                body.truncate(cut);
                body
            })
        }),
        "[\\[\\]{}\",:0-9a-z \\\\-]{0,64}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn a_count_is_a_number_within_its_bounds_or_an_error(
        query in prop_oneof![query_like(), any::<String>()],
        max in 1u64..=1_000_000,
    ) {
        if let Ok(count) = query::count(Some(&query), max) {
            prop_assert!((1..=max).contains(&count), "{count}");
        }
        let _ = query::param(&query, "format");
        let decoded = query::decode(&query);
        // Decoding never makes text longer.
        prop_assert!(decoded.len() <= query.len() * 3);
    }

    #[test]
    fn every_path_has_a_route_and_few_are_number_resources(
        path in prop_oneof![path_like(), any::<String>()],
    ) {
        let route = route_of(&path);
        prop_assert!(!route.as_str().is_empty());
        if let Some(resource) = resource_of(&path) {
            // Exactly its path, or that with one slash after it.
            prop_assert_eq!(path.strip_suffix('/').unwrap_or(&path), resource.path);
            prop_assert_eq!(route.as_str(), resource.path);
        }
    }

    #[test]
    fn a_sequence_path_names_one_resource_or_none(
        tail in prop_oneof![path_like(), any::<String>()],
    ) {
        let tail = tail.trim_start_matches('/');
        let segments = tail.trim_end_matches('/').split('/').count();
        match Target::parse(tail) {
            Some(Target::Collection) => prop_assert_eq!(tail.trim_end_matches('/'), ""),
            Some(target) => {
                prop_assert!(segments <= 2, "{target:?}");
                let name = target.name().unwrap_or_default();
                // Whatever the path decodes to is checked before use.
                if check_name(name).is_ok() {
                    prop_assert!(name.len() <= MAX_NAME_LEN);
                }
            }
            None => prop_assert!(segments >= 2),
        }
    }

    #[test]
    fn a_create_body_makes_a_sequence_or_is_answered_400(
        body in body_bytes(),
        name in prop_oneof![Just("orders".to_owned()), "[a-z0-9_-]{1,64}", any::<String>()],
    ) {
        match spec_of(&name, &body) {
            Ok(spec) => {
                prop_assert_eq!(&spec.name, &name);
                prop_assert!(spec.min <= spec.max);
                prop_assert!((spec.min..=spec.max).contains(&spec.start));
            }
            Err(error) => prop_assert_eq!(error.status().as_u16(), 400, "{:?}", error),
        }
    }

    #[test]
    fn a_restart_body_is_read_or_answered_400(body in body_bytes()) {
        if let Err(error) = parse_body::<RestartBody>(&body, false) {
            prop_assert_eq!(error.status().as_u16(), 400, "{:?}", error);
        }
    }
}
