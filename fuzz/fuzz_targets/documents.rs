//! Target 2: fixture parsing, YAML and JSON documents, multi-document, and the replay pipeline
//! behind `image-config-webhook replay` on whatever they hold.
//!
//! The first byte chooses `json: true` (odd) or `json: false` (even); the rest is the text
//! (lossily decoded, so every input reaches the parsers). Invariants: no panic; `Ok` holds at
//! least one document and never a `null` one; with `json: true` exactly one document.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::Policy;
use image_config_webhook::input::{Input, parse_documents};
use image_config_webhook::replay::{Local, Options, replay};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

fuzz_target!(|data: &[u8]| {
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let input = Input {
        source: "fuzz".to_owned(),
        text: Ok(String::from_utf8_lossy(rest).into_owned()),
        json: flag & 1 == 1,
    };
    if let Ok(docs) = parse_documents(&input) {
        assert!(!docs.is_empty(), "Ok holds at least one document");
        assert!(
            docs.iter().all(|d| !d.is_null()),
            "null documents are dropped"
        );
        if input.json {
            assert_eq!(docs.len(), 1, "a JSON input is one document");
        }
    }
    let report = replay(
        std::slice::from_ref(&input),
        &Options::default(),
        &mut Local(&POLICY),
    );
    let _ = report.conclusion();
});
