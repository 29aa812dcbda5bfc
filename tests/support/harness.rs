//! The report of a `harness = false` test binary (one that must control its own threads, so
//! libtest cannot run it): one `test NAME ... ok|FAILED` line per check and a last line in
//! libtest's form (`test result: ok. N passed; N failed; ...`), which `.ci/lib.sh`'s
//! `count_results` reads like libtest's. Like libtest it takes filters (`cargo test NAME`
//! runs only the checks whose name contains NAME) and `--list`; its other options are
//! accepted and ignored. A check that cannot run calls [`super::skip`] and passes, as in
//! libtest binaries.

use std::process::ExitCode;

/// libtest's options that take a value as the next argument.
const WITH_VALUE: [&str; 7] = [
    "--test-threads",
    "--skip",
    "--format",
    "--color",
    "--logfile",
    "--shuffle-seed",
    "-Z",
];

#[derive(Default)]
pub struct Harness {
    filters: Vec<String>,
    skips: Vec<String>,
    list: bool,
    passed: usize,
    failed: usize,
    filtered_out: usize,
}

impl Harness {
    /// A harness for this process's arguments.
    pub fn from_args() -> Harness {
        let mut h = Harness::default();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "--skip" {
                h.skips.extend(args.next());
            } else if WITH_VALUE.contains(&a.as_str()) {
                args.next();
            } else if a == "--list" {
                h.list = true;
            } else if !a.starts_with('-') {
                h.filters.push(a);
            }
        }
        h
    }

    /// Run check `name` (a sentence) unless filtered out, and report it; `Err` says what was
    /// wrong.
    pub fn check(&mut self, name: &str, check: impl FnOnce() -> Result<(), String>) {
        let wanted =
            self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()));
        if !wanted || self.skips.iter().any(|s| name.contains(s.as_str())) {
            self.filtered_out += 1;
            return;
        }
        if self.list {
            println!("{name}: test");
            return;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check))
            .unwrap_or_else(|_| Err("panicked (the message is above)".to_string()));
        match result {
            Ok(()) => {
                println!("test {name} ... ok");
                self.passed += 1;
            }
            Err(why) => {
                println!("test {name} ... FAILED\n    {why}");
                self.failed += 1;
            }
        }
    }

    /// Print the summary line; the exit code is non-zero if any check failed.
    pub fn finish(self) -> ExitCode {
        if self.list {
            return ExitCode::SUCCESS;
        }
        println!(
            "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out",
            if self.failed == 0 { "ok" } else { "FAILED" },
            self.passed,
            self.failed,
            self.filtered_out
        );
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
