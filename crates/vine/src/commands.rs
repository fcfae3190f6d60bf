//! Command implementations, one module per command group.

mod config;
mod daemon;
mod demo;
mod doctor;
mod explain;
mod identity;

use std::io;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command};

/// How a command failed; [`crate::run`] maps it to an exit code.
#[derive(Debug)]
pub enum Failure {
    /// The problems were already printed (exit 1).
    Reported,
    /// The command is not built yet (exit 3).
    NotImplemented(&'static str),
    /// An error to print (exit 1).
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

/// Result of a command.
pub type Outcome = Result<(), Failure>;

/// Runs the parsed command.
pub fn dispatch(cli: &Cli) -> Outcome {
    match &cli.command {
        Command::Version => {
            crate::output::emit(
                cli.format,
                &serde_json::json!({
                    "name": "vine",
                    "version": env!("CARGO_PKG_VERSION"),
                    "commit": env!("VINE_GIT_COMMIT"),
                }),
                || println!("vine {}", crate::LONG_VERSION),
            );
            Ok(())
        }
        Command::Identity(cmd) => identity::run(cli, cmd),
        Command::Config(cmd) => config::run(cli, cmd),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "vine", &mut io::stdout());
            Ok(())
        }
        Command::Daemon(d) => daemon::run(cli, d),
        Command::Up => daemon::foreground(cli),
        Command::Down => daemon::stop(cli),
        Command::Status => daemon::live(cli, daemon::Live::Status),
        Command::Peers => daemon::live(cli, daemon::Live::Peers),
        Command::Routes => daemon::live(cli, daemon::Live::Routes),
        Command::Sessions(args) => match &args.explain {
            Some(peer) => explain::run(cli, peer),
            None => daemon::live(cli, daemon::Live::Sessions),
        },
        Command::Counters => daemon::live(cli, daemon::Live::Counters),
        Command::Snapshot => daemon::live(cli, daemon::Live::Snapshot),
        Command::Ping(args) => daemon::ping(cli, args.address, args.count),
        Command::Doctor => doctor::run(cli),
        Command::Demo(args) => demo::run(args),
    }
}
