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
//!
//! Behaviour lives in `vine-core`, `vine-linux` and `vine-daemon` (and, for
//! `vine demo`, `vine-lab`); this crate only wires it.
//!
//! ## Modules
//!
//! The arrows point one way: this file → `commands` (dispatch) → one
//! module per command group (`commands/*`) → the shared leaves: [`cli`]
//! (the arguments), [`output`] (printing), `failure` (exit codes), `api`
//! (asking the running daemon) and `allowlist` (an identity's
//! `[[allowed_peers]]` entry). A command module never uses another's items.
//!
//! ## IO and time contract
//!
//! A command does its IO directly: files, the daemon's api socket (each
//! request bounded by a timeout), stdout and stderr; `vine up` runs the
//! daemon in this process and `vine demo` builds network namespaces.

mod allowlist;
mod api;
pub mod cli;
mod commands;
mod failure;
pub mod output;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use cli::LONG_VERSION;
pub use failure::Failure;

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
        Err(failure) => failure.report(),
    }
}
