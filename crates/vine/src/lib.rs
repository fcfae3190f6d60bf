//! # vine (CLI)
//!
//! The operator-facing `vine` command. [`run`] parses arguments with clap
//! ([`cli`]), dispatches to a command module, prints the result as text or
//! JSON ([`output`]) and returns the process exit code:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | failure or invalid input (config, identity, arguments' values) |
//! | 2 | usage error (unknown command or flag) |
//! | 3 | the command exists but is not implemented yet |
//!
//! Behaviour lives in `vine-core` and `vine-linux`; this crate only wires it.

pub mod cli;
mod commands;
pub mod output;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use commands::Failure;

/// Version string with the git commit, e.g. `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VINE_GIT_COMMIT"),
    ")"
);

/// Runs the CLI with `args` (including the program name) and returns the
/// exit code. Prints to stdout/stderr.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Reported) => ExitCode::from(1),
        Err(Failure::NotImplemented(what)) => {
            eprintln!(
                "error: `vine {what}` is not implemented yet: it needs the vine daemon, which this build does not have. Nothing was done."
            );
            ExitCode::from(3)
        }
        Err(Failure::Error(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
