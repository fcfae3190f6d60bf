//! Command implementations, one module per command group.

mod config;
mod identity;

use std::io;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command, DaemonCommand};

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
        Command::Daemon(d) => Err(Failure::NotImplemented(match d {
            DaemonCommand::Run => "daemon run",
            DaemonCommand::Start => "daemon start",
            DaemonCommand::Stop => "daemon stop",
            DaemonCommand::Status => "daemon status",
        })),
        Command::Up => Err(Failure::NotImplemented("up")),
        Command::Down => Err(Failure::NotImplemented("down")),
        Command::Status => Err(Failure::NotImplemented("status")),
        Command::Peers => Err(Failure::NotImplemented("peers")),
        Command::Routes => Err(Failure::NotImplemented("routes")),
        Command::Sessions => Err(Failure::NotImplemented("sessions")),
        Command::Counters => Err(Failure::NotImplemented("counters")),
        Command::Snapshot => Err(Failure::NotImplemented("snapshot")),
        Command::Ping(_) => Err(Failure::NotImplemented("ping")),
        Command::Doctor => Err(Failure::NotImplemented("doctor")),
    }
}
