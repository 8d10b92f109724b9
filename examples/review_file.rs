//! One AdmissionReview body from a file, reviewed N times in-process: the engine alone, for
//! `valgrind --tool=callgrind --toggle-collect='*review_within*'` (instructions per review,
//! repeatable on a noisy machine) or a quick wall-clock figure. BENCHMARKS.md shows its use.
//!
//! `cargo run --release --example review_file -- BODY.json [N] [CONTEXT]`: CONTEXT is a file or
//! directory of mirror sets and a ClusterVersion, as `replay --context` takes them.
#![allow(clippy::disallowed_methods)] // a tool: it reads its file, its arguments and the clock

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), count) = (args.first(), args.get(1)) else {
        eprintln!("usage: review_file BODY.json [N] [CONTEXT]");
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
    let mut policy = image_config_webhook::Policy::default();
    if let Some(context) = args.get(2) {
        let inputs = image_config_webhook::input::load_inputs(std::slice::from_ref(context));
        match image_config_webhook::context::load::from_inputs(&inputs) {
            Ok(loaded) => policy = policy.with_context(Some(std::sync::Arc::new(loaded.context))),
            Err(e) => {
                eprintln!("{context}: {e}");
                return ExitCode::from(2);
            }
        }
    }
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
