//! Target 1: the whole pure core, AdmissionReview bytes -> response bytes.
//!
//! Invariants: `review` never panics; an `Ok` body is JSON with the request's uid in
//! `response.uid`; an `Err` that salvaged a uid answers with JSON carrying that uid.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::{Policy, review};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

fuzz_target!(|data: &[u8]| {
    match review(data, &POLICY) {
        Ok(reviewed) => {
            let body: Value = serde_json::from_slice(&reviewed.body)
                .expect("the response body of an Ok review is JSON");
            assert_eq!(
                body["response"]["uid"].as_str(),
                Some(reviewed.request.uid.as_str()),
                "the response carries the request uid"
            );
            assert_eq!(
                body["response"]["allowed"].as_bool(),
                Some(reviewed.verdict.allowed),
                "the response carries the verdict"
            );
        }
        Err(error) => {
            if let Some(bytes) = error.to_response() {
                let body: Value =
                    serde_json::from_slice(&bytes).expect("the error response is JSON");
                assert_eq!(body["response"]["uid"].as_str(), error.uid());
                assert_eq!(body["response"]["allowed"].as_bool(), Some(false));
            }
        }
    }
});
