//! Many clients at once: every number once, every response in order.

use crate::helpers::{Backend, MAX, TestApp, assert_consecutive, assert_unique};

/// 32 clients mixing v1 and v2 on both sequences, with small blocks so
/// that many leases (and block boundaries) happen during the test.
async fn concurrent_clients_get_every_number_once_and_in_order(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        s.block_min = 200;
        s.block_max = 800;
    })
    .await;
    let mut clients = Vec::new();
    for client in 0..32u64 {
        let http = app.http.clone();
        clients.push(tokio::spawn(async move {
            let mut forward: Vec<Vec<i64>> = Vec::new();
            let mut reverse: Vec<Vec<i64>> = Vec::new();
            for i in 0..60u64 {
                let count = (client * 7 + i * 13) % 100 + 1;
                match i % 4 {
                    0 => forward.push(http.numbers("/v1/forward").await),
                    1 => forward.push(http.numbers(&format!("/v2/forward?count={count}")).await),
                    2 => reverse.push(http.numbers("/v1/reverse").await),
                    _ => reverse.push(http.numbers(&format!("/v2/reverse?count={count}")).await),
                }
            }
            (forward, reverse)
        }));
    }
    let (mut all_forward, mut all_reverse) = (Vec::new(), Vec::new());
    for client in clients {
        let (forward, reverse) = client.await.expect("client task");
        for (responses, step, all) in [
            (&forward, 1, &mut all_forward),
            (&reverse, -1, &mut all_reverse),
        ] {
            for (i, numbers) in responses.iter().enumerate() {
                assert_consecutive(numbers, step);
                // A later response of the same client continues past the earlier one.
                if i > 0 {
                    let before = *responses[i - 1].last().expect("non-empty");
                    assert!(
                        numbers[0] * step > before * step,
                        "{before} then {numbers:?}"
                    );
                }
                all.extend(numbers);
            }
        }
    }
    assert_unique(&all_forward);
    assert_unique(&all_reverse);
    // One instance, no restart: the numbers issued are exactly the first ones.
    all_forward.sort_unstable();
    assert_eq!(
        all_forward,
        (1..=all_forward.len() as i64).collect::<Vec<_>>()
    );
    all_reverse.sort_unstable();
    let count = all_reverse.len() as i64;
    assert_eq!(all_reverse, (MAX - count + 1..=MAX).collect::<Vec<_>>());
}

async fn one_client_sees_each_response_continue_where_the_last_ended(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        s.block_min = 200;
        s.block_max = 200;
    })
    .await;
    let mut issued = Vec::new();
    for count in (1..=100).cycle().step_by(17).take(60) {
        issued.extend(app.numbers(&format!("/v2/forward?count={count}")).await);
    }
    assert_eq!(issued[0], 1);
    assert_consecutive(&issued, 1);
}

crate::on_both_stores!(
    concurrent_clients_get_every_number_once_and_in_order,
    one_client_sees_each_response_continue_where_the_last_ended,
);
