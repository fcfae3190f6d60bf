//! `vine doctor`: can this host run vine with this config?

use serde::Serialize;
use vine_linux::doctor::{self, Check};

use crate::cli::{Cli, Format};
use crate::failure::{Failure, Outcome};
use crate::output;

/// The JSON document.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    checks: &'a [Check],
}

/// Runs every host check (those that need no config run even when the
/// config cannot be read) and prints one line per check. Exit 0 when all
/// pass, 1 otherwise.
pub(crate) fn run(cli: &Cli) -> Outcome {
    let checks = doctor::run_for_path(&cli.config_path(), cli.identity.as_deref());
    let ok = doctor::all_ok(&checks);
    match cli.format {
        Format::Json => output::json(&Report {
            ok,
            checks: &checks,
        }),
        Format::Text => print_text(&checks),
    }
    if ok { Ok(()) } else { Err(Failure::Reported) }
}

fn print_text(checks: &[Check]) {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        let status = if c.ok { "ok" } else { "FAIL" };
        match &c.fix {
            Some(fix) if !c.ok => {
                println!("{status:<4}  {:<width$}  {}; fix: {fix}", c.name, c.detail)
            }
            _ => println!("{status:<4}  {:<width$}  {}", c.name, c.detail),
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!("all {} checks passed", checks.len());
    } else {
        println!("{failed} of {} checks failed", checks.len());
    }
}
