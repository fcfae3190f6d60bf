//! The `workload-leftovers` check: host changes a stopped daemon left
//! behind (journalled changes not reverted, workload links).

use std::fs;
use std::path::Path;

use vine_core::config::Config;

use crate::attach;
use crate::undo;

/// The journal's file name next to the identity (the daemon's
/// `workloads` module writes it).
const JOURNAL_FILE: &str = "host-changes.jsonl";

/// What a daemon for `config` left on the host: `None` when nothing, else
/// a description and whether a daemon runs (then they are its workloads).
pub(super) fn find(config: &Config) -> Option<(String, bool)> {
    let state_dir = Path::new(&config.node.identity_path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let journal = state_dir.join(JOURNAL_FILE);
    let changes = undo::recorded_changes(&journal).unwrap_or_default();
    let links = attach::workload_links().unwrap_or_default();
    if changes.is_empty() && links.is_empty() {
        return None;
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
    Some((found, daemon_running(&config.node.runtime_dir)))
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
