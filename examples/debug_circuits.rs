//! An inspection endpoint: `GET /debug/circuits` returns a JSON snapshot
//! of every breaker in a registry, `GET /metrics` the Prometheus text.
//! A bare `std::net` server, to keep the example free of a web framework.
//!
//! `cargo run --example debug_circuits --features serde` then
//! `curl localhost:8099/debug/circuits` (add `-- --once` to serve one
//! request and exit, as CI does).

use nanobreaker::{Registry, State};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reg = Registry::builder().stripes(1).build()?;
    // Some traffic, so there is something to see.
    for i in 0..10 {
        reg.with("orders", |cb| {
            cb.try_acquire().map(|p| if i % 3 == 0 { p.failure() } else { p.success() })
        })?
        .ok();
    }
    reg.get("payments")?.transition_to(State::ForcedOpen);

    let once = std::env::args().any(|a| a == "--once");
    let listener = TcpListener::bind("127.0.0.1:8099")?;
    eprintln!("listening on http://127.0.0.1:8099/debug/circuits");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (status, kind, body) = match path {
            "/debug/circuits" => {
                ("200 OK", "application/json", serde_json::to_string_pretty(&reg.snapshot())?)
            }
            "/metrics" => ("200 OK", "text/plain; version=0.0.4", reg.render_prometheus()),
            _ => ("404 Not Found", "text/plain", "try /debug/circuits or /metrics\n".to_string()),
        };
        write!(stream, "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
        if once {
            break;
        }
    }
    Ok(())
}
