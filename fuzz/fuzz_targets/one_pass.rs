//! Target 7: the one-pass decode against the lenient path, AdmissionReview bytes -> response.
//!
//! Invariant: `review` (one pass when it can) and `review_leniently_within` (always a tree) give
//! the same answer, byte for byte, for every input: the same response body and verdict, or the
//! same error, with the same uid, kind and message.
#![no_main]

use std::sync::LazyLock;

use image_config_webhook::Policy;
use image_config_webhook::review::{review_leniently_within, review_within};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

/// The server's budget for a small review (`server::validate::SMALL_REVIEW_BUDGET`), so that
/// the size bound of the one-pass decode is exercised too.
const BUDGET: usize = 16 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let fast = review_within(data, &POLICY, BUDGET);
    let lenient = review_leniently_within(data, &POLICY, BUDGET);
    match (fast, lenient) {
        (Ok(fast), Ok(lenient)) => {
            assert_eq!(fast.body, lenient.body, "the same response");
            assert_eq!(fast.verdict, lenient.verdict, "the same verdict");
            assert_eq!(fast.request, lenient.request, "the same request");
            assert_eq!(fast.unlisted_findings, lenient.unlisted_findings);
        }
        (Err(fast), Err(lenient)) => assert_eq!(fast, lenient, "the same error"),
        (fast, lenient) => panic!("the paths disagree: {fast:?} against {lenient:?}"),
    }
});
