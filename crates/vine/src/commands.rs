//! Dispatch: which command module runs a parsed command (and the two
//! one-liners, `version` and `completions`). One module per command group;
//! each stands on the shared leaves (`cli`, `output`, `failure`, `api`).

mod config;
mod daemon;
mod demo;
mod doctor;
mod explain;
mod identity;
mod workloads;

use std::io;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command, LONG_VERSION};
use crate::failure::Outcome;

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
                || println!("vine {LONG_VERSION}"),
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
        Command::Attach(args) => workloads::attach(cli, args),
        Command::Detach(args) => workloads::detach(cli, &args.name),
        Command::Workloads => workloads::list(cli),
        Command::Doctor => doctor::run(cli),
        Command::Demo(args) => demo::run(args),
    }
}
