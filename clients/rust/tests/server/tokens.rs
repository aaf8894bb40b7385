//! Bearer tokens: with PEZ_LEASE_TOKENS set, only a lease token (or the
//! admin token) takes range leases.

use crate::harness::Pez;
use pez_client::{Client, Error};
use std::time::Duration;

fn client(pez: &Pez, token: Option<&str>) -> Client {
    let builder = Client::builder()
        .urls([pez.url()])
        .sequence("forward")
        .deadline(Duration::from_secs(5));
    match token {
        Some(token) => builder.token(token),
        None => builder,
    }
    .build()
    .expect("client")
}

#[test]
fn with_lease_tokens_set_only_a_lease_token_takes_numbers() {
    let pez = Pez::start(&[
        ("PEZ_TOKENS", "numbers-only"),
        ("PEZ_LEASE_TOKENS", "leases"),
    ]);

    let error = client(&pez, None).next().expect_err("no token");
    assert!(
        matches!(error, Error::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("refused the token (401)"),
        "{error}"
    );

    let error = client(&pez, Some("numbers-only"))
        .next()
        .expect_err("a token of PEZ_TOKENS");
    assert!(
        matches!(error, Error::Unauthorized { status: 403, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("PEZ_LEASE_TOKENS"), "{error}");

    let leases = client(&pez, Some("leases"));
    let a = leases.next().expect("a lease token");
    let b = leases.next().expect("a lease token");
    assert!(a < b);
}

#[test]
fn a_refused_token_is_asked_again_on_the_next_call_not_remembered() {
    let pez = Pez::start(&[("PEZ_LEASE_TOKENS", "leases")]);
    let client = client(&pez, Some("wrong"));
    for _ in 0..2 {
        assert!(matches!(
            client.next(),
            Err(Error::Unauthorized { status: 401, .. })
        ));
    }
}
