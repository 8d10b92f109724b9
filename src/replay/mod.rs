//! `replay`: judge AdmissionReview fixtures or plain Image YAML from disk with the same engine the
//! webhook runs, compare with recorded expectations, and report in text, JSON or JUnit.
//!
//! Inputs are files and directories (recursive; `.json`, `.yaml`, `.yml`) or `-` for stdin. A
//! document may be a full AdmissionReview, an AdmissionReview `request` alone, a bare Image
//! (CREATE unless told otherwise, UPDATE against `--old`), a `List`/`ImageList`, or several
//! YAML documents. An input that cannot be read or parsed gets its own result with `error` (one
//! line; a syntax error's snippet, headed by the file name, is in `error_detail`).
//!
//! Inputs are read and parsed first, in order; then the requests go to the [`Judge`], up to
//! [`Options::concurrency`] at once (`replay --server`), and the report lists the results in
//! input order, as a sequential run would.
//!
//! The files: `judge.rs` prepares requests and judges them ([`Judge`], [`Local`],
//! [`judge_object`]); `apiserver.rs` is what the API server does to a bare object before
//! admission; `expect.rs` reads and compares [`Expectation`]s; `report.rs` holds the results,
//! the [`Report`] and its writers. Reading inputs is [`crate::input`]'s.

use serde_json::Value;

mod apiserver;
mod expect;
mod judge;
mod report;

pub use expect::{Expectation, ExpectationError, ExpectationErrorKind};
pub use judge::{
    Judge, JudgeError, Local, ObjectError, ObjectVerdict, Progress, Silent, judge_object,
};
pub use report::{Conclusion, Outcome, Report, Summary, oc_message};

use crate::envelope::Operation;
use crate::input::Input;

/// How bare Image documents are replayed, how requests are sent to the judge, and what fails
/// the run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The operation for bare Images (default CREATE, or UPDATE when `old` is given).
    pub operation: Option<Operation>,
    /// The old object for bare Images (`--old`).
    pub old: Option<Value>,
    /// Expectations from `--expect` files.
    pub expectations: Vec<Expectation>,
    /// Requests judged at once [default: 0, read as 1: one after the other]. Results are
    /// reported in input order whatever the value.
    pub concurrency: usize,
    /// Stop sending once [`FAIL_FAST_AFTER`] requests in a row found the judge unreachable;
    /// the requests not sent are reported as errors [default: off].
    pub fail_fast: bool,
    /// A warning fails the run (exit 1), as a denial does [default: off].
    pub fail_on_warn: bool,
}

/// With [`Options::fail_fast`], how many requests in a row must find the judge unreachable
/// before the rest are not sent.
pub const FAIL_FAST_AFTER: usize = 3;

/// Replays every input.
pub fn replay(inputs: &[Input], options: &Options, judge: &dyn Judge) -> Report {
    replay_with(inputs, options, judge, &Silent)
}

/// Replays every input, telling `progress` as requests are judged. Inputs are read and
/// parsed first, in order; then up to [`Options::concurrency`] requests are judged at once;
/// the report lists results in input order either way.
pub fn replay_with(
    inputs: &[Input],
    options: &Options,
    judge: &dyn Judge,
    progress: &dyn Progress,
) -> Report {
    let mut results = judge::judge_inputs(inputs, options, judge, progress);
    let knows_rules = judge.knows_rules();
    let unmatched = expect::apply_expectations(&mut results, &options.expectations, knows_rules);
    let summary = report::summarize(&results, unmatched.len());
    Report {
        results,
        summary,
        unmatched,
        fail_on_warn: options.fail_on_warn,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::engine::Verdict;
    use crate::envelope::AdmissionRequest;
    use crate::policy::Policy;

    /// `count` bare Images named by their number, one input each.
    fn images(count: usize) -> Vec<Input> {
        (0..count)
            .map(|i| Input {
                source: format!("{i:02}.yaml"),
                text: Ok(format!(
                    "{{\"apiVersion\": \"config.openshift.io/v1\", \"kind\": \"Image\", \"metadata\": {{\"name\": \"cluster\"}}, \"spec\": {{\"registrySources\": {{\"blockedRegistries\": [\"r{i}.example.com\"]}}}}}}"
                )),
                json: false,
            })
            .collect()
    }

    /// The engine, answering later for earlier requests (so that answers arrive out of order).
    struct Slow<'a> {
        local: Local<'a>,
        calls: AtomicUsize,
    }

    impl Judge for Slow<'_> {
        fn judge(&self, request: &AdmissionRequest) -> Result<Verdict, JudgeError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(40u64.saturating_sub(4 * n as u64)));
            self.local.judge(request)
        }
    }

    /// Never reachable; counts the calls.
    struct Down(AtomicUsize);

    impl Judge for Down {
        fn judge(&self, _: &AdmissionRequest) -> Result<Verdict, JudgeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(JudgeError::Unreachable("cannot connect".into()))
        }
    }

    #[test]
    fn concurrent_results_are_the_sequential_ones_in_input_order() {
        let policy = Policy::default();
        let inputs = images(10);
        let sequential = replay(&inputs, &Options::default(), &Local(&policy));
        let slow = Slow {
            local: Local(&policy),
            calls: AtomicUsize::new(0),
        };
        let options = Options {
            concurrency: 4,
            ..Options::default()
        };
        let concurrent = replay(&inputs, &options, &slow);
        assert_eq!(concurrent.to_json(), sequential.to_json());
        assert_eq!(concurrent.conclusion(), sequential.conclusion());
        assert_eq!(slow.calls.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn fail_fast_sends_no_more_once_the_judge_was_unreachable_three_times_in_a_row() {
        for concurrency in [1, 4] {
            let down = Down(AtomicUsize::new(0));
            let options = Options {
                concurrency,
                fail_fast: true,
                ..Options::default()
            };
            let report = replay(&images(20), &options, &down);
            let sent = down.0.load(Ordering::SeqCst);
            assert!(
                (FAIL_FAST_AFTER..FAIL_FAST_AFTER + concurrency).contains(&sent),
                "{sent} sent at concurrency {concurrency}"
            );
            let not_sent = report
                .results
                .iter()
                .filter(|r| {
                    r.error
                        .as_deref()
                        .is_some_and(|e| e.starts_with("not sent"))
                })
                .count();
            assert_eq!(sent + not_sent, 20);
            assert_eq!(report.summary.errors, 20);
            assert_eq!(report.conclusion(), Conclusion::Error);
        }
        // Without it, every request is sent.
        let down = Down(AtomicUsize::new(0));
        let report = replay(&images(20), &Options::default(), &down);
        assert_eq!(down.0.load(Ordering::SeqCst), 20);
        assert_eq!(report.summary.errors, 20);
    }

    #[test]
    fn a_warning_fails_the_run_only_with_fail_on_warn() {
        let policy = Policy::default();
        let warned = Input {
            source: "quay.yaml".to_owned(),
            text: Ok("apiVersion: config.openshift.io/v1\nkind: Image\nmetadata: {name: cluster}\nspec: {registrySources: {blockedRegistries: [quay.io]}}\n".to_owned()),
            json: false,
        };
        let inputs = std::slice::from_ref(&warned);
        let report = replay(inputs, &Options::default(), &Local(&policy));
        assert!(report.results[0].warned());
        assert_eq!(report.conclusion(), Conclusion::Pass);
        let options = Options {
            fail_on_warn: true,
            ..Options::default()
        };
        assert_eq!(
            replay(inputs, &options, &Local(&policy)).conclusion(),
            Conclusion::Fail
        );
    }
}
