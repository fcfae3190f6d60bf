//! The `workload-leftovers` check: host changes a stopped daemon left
//! behind (journalled changes not reverted, workload links).

use std::fs;
use std::path::Path;

use vine_core::config::Config;

use super::Check;
use crate::attach;
use crate::undo;

/// The journal's file name next to the identity (the daemon's
/// `workloads` module writes it).
const JOURNAL_FILE: &str = "host-changes.jsonl";

/// Reports journalled changes and `vw…` links when no daemon runs for
/// `config` (while one runs they are its workloads).
pub(super) fn check(config: &Config) -> Check {
    const NAME: &str = "workload-leftovers";
    let state_dir = Path::new(&config.node.identity_path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let journal = state_dir.join(JOURNAL_FILE);
    let changes = undo::recorded_changes(&journal).unwrap_or_default();
    let links = attach::workload_links().unwrap_or_default();
    if changes.is_empty() && links.is_empty() {
        return Check::pass(NAME, "no workload links and no unreverted host changes");
    }
    let found = format!(
        "{} journalled host change(s) in {} ({}) and {} workload link(s) ({})",
        changes.len(),
        journal.display(),
        changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        links.len(),
        links.join(", ")
    );
    if daemon_running(&config.node.runtime_dir) {
        return Check::pass(NAME, format!("{found}: the running daemon's workloads"));
    }
    Check::fail(
        NAME,
        format!("no daemon runs, yet there are {found}"),
        "start the daemon (`vine daemon start`): it reverts what the journal lists before it attaches anything; or delete the links yourself (`ip link del vw…`)",
    )
}

fn daemon_running(runtime_dir: &str) -> bool {
    fs::read_to_string(Path::new(runtime_dir).join("vine.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(|pid| {
            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
                exe.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vine"))
            })
        })
}
