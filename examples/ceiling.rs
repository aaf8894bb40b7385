//! The HTTP ceiling for `make bench`: the smallest warp server, answering
//! `71` to every GET, on the same stack (warp 0.4 on hyper 1, through
//! warp's own `serve`) and build profile as PEZ. Whatever PEZ does beyond
//! this costs throughput; the ratio shows how much.
//!
//! Usage: ceiling ADDRESS:PORT

use warp::Filter;

#[tokio::main]
async fn main() {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| ([127, 0, 0, 1], 8071).into());
    let seventy_one = warp::get().map(|| "71");
    warp::serve(seventy_one).run(addr).await;
}
