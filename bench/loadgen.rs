//! A small, bounded HTTP load generator for the ingestion endpoint: `concurrency` workers post
//! batches of `batch` events for at most `seconds` seconds or `max-requests` requests, then it
//! prints one JSON line with throughput and latency percentiles. Run by `bench/run.sh`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    /// A key with the write scope.
    #[arg(long, env = "AV_KEY")]
    key: String,
    /// Events per request.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Stop after this many seconds…
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// …or after this many requests in all, whichever comes first.
    #[arg(long, default_value_t = 200_000)]
    max_requests: usize,
}

fn body(batch: usize, worker: usize, n: usize) -> Vec<u8> {
    let now = chrono::Utc::now();
    let events: Vec<Value> = (0..batch)
        .map(|i| {
            json!({"type": "span", "trace_id": format!("load-{worker}-{n}"), "timestamp": now,
                   "name": "llm.call", "body": {"model": "gpt", "tokens": i}})
        })
        .collect();
    serde_json::to_vec(&json!({"batch": events})).unwrap()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    let url = format!("{}/api/v1/traces/batch/", args.url.trim_end_matches('/'));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let per_worker = args.max_requests.div_ceil(args.concurrency);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|worker| {
            let (client, url, key, batch) =
                (client.clone(), url.clone(), args.key.clone(), args.batch);
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                for n in 0..per_worker {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let payload = body(batch, worker, n);
                    let sent = Instant::now();
                    let res = client
                        .post(&url)
                        .header("Authorization", format!("Bearer {key}"))
                        .header("Content-Type", "application/json")
                        .body(payload)
                        .send()
                        .await;
                    match res {
                        Ok(res) if res.status().is_success() => {
                            let _ = res.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (l, e) = worker.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        json!({
            "batch": args.batch,
            "concurrency": args.concurrency,
            "requests": latencies.len(),
            "errors": errors,
            "seconds": (elapsed * 100.0).round() / 100.0,
            "events_per_sec": ((latencies.len() * args.batch) as f64 / elapsed).round(),
            "p50_ms": (pct(0.50) * 100.0).round() / 100.0,
            "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        })
    );
}
