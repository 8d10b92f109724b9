//! One AdmissionReview body from a file, reviewed N times in-process: the engine alone, for
//! `valgrind --tool=callgrind --toggle-collect='*review_within*'` (instructions per review,
//! repeatable on a noisy machine) or a quick wall-clock figure. BENCHMARKS.md shows its use.
//!
//! `cargo run --release --example review_file -- BODY.json [N]`
#![allow(clippy::disallowed_methods)] // a tool: it reads its file, its arguments and the clock

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), count) = (args.first(), args.get(1)) else {
        eprintln!("usage: review_file BODY.json [N]");
        return ExitCode::from(2);
    };
    let Ok(count) = count.map_or(Ok(1), |n| n.parse::<u32>()) else {
        eprintln!("N must be a positive number");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(path) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let policy = image_config_webhook::Policy::default();
    let started = std::time::Instant::now();
    for _ in 0..count.max(1) {
        if let Err(e) = image_config_webhook::review(std::hint::black_box(&body), &policy) {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("{:?} per review", started.elapsed() / count.max(1));
    ExitCode::SUCCESS
}
