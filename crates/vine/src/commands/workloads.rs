//! `vine attach`, `vine detach`, `vine workloads`: the daemon's workloads.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use vine_daemon::api::{RequestBody, ResponseBody, WorkloadInfo};

use crate::api::{ask, load_config, not_running};
use crate::cli::{AttachArgs, Cli};
use crate::failure::{Failure, Outcome};
use crate::output;

/// `vine attach NAME --netns PATH`.
pub(crate) fn attach(cli: &Cli, args: &AttachArgs) -> Outcome {
    let config = load_config(cli)?;
    let netns = netns_path(&args.netns);
    let body = RequestBody::Attach {
        name: args.name.clone(),
        netns: netns.display().to_string(),
    };
    let Some(response) = ask(&config, body)? else {
        not_running(
            &config,
            "; start it (`vine daemon start`) to attach workloads",
        );
        return Err(Failure::Reported);
    };
    let ResponseBody::Attached(w) = response else {
        return Err(anyhow!("the daemon answered attach with {response:?}").into());
    };
    output::emit(cli.format, &w, || print_one("attached", &w));
    Ok(())
}

/// `vine detach NAME`.
pub(crate) fn detach(cli: &Cli, name: &str) -> Outcome {
    let config = load_config(cli)?;
    let body = RequestBody::Detach {
        name: name.to_owned(),
    };
    let Some(response) = ask(&config, body)? else {
        not_running(&config, "; a stopped daemon has no workloads linked");
        return Err(Failure::Reported);
    };
    let ResponseBody::Detached(w) = response else {
        return Err(anyhow!("the daemon answered detach with {response:?}").into());
    };
    output::emit(cli.format, &w, || print_one("detached", &w));
    Ok(())
}

/// `vine workloads`.
pub(crate) fn list(cli: &Cli) -> Outcome {
    let config = load_config(cli)?;
    let Some(response) = ask(&config, RequestBody::Workloads)? else {
        not_running(&config, "; no workloads are attached");
        return Err(Failure::Reported);
    };
    let ResponseBody::Workloads(ws) = response else {
        return Err(anyhow!("the daemon answered workloads with {response:?}").into());
    };
    output::emit(cli.format, &ws, || {
        if ws.is_empty() {
            println!("no workloads attached (`vine attach NAME --netns PATH` attaches one)");
            return;
        }
        let rows: Vec<Vec<String>> = ws
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.address.to_string(),
                    w.netns.clone(),
                    w.since.to_string(),
                    output::opt(&w.host_ifname),
                ]
            })
            .collect();
        output::table(&["NAME", "ADDRESS", "NETNS", "SINCE", "HOST_IF"], &rows);
    });
    Ok(())
}

/// A bare name (no `/`) means `/run/netns/NAME`, as `ip netns` names them;
/// a relative path is made absolute (the daemon's working directory is not
/// ours).
fn netns_path(given: &Path) -> PathBuf {
    let s = given.as_os_str();
    if !s.is_empty() && !given.to_string_lossy().contains('/') {
        return Path::new("/run/netns").join(given);
    }
    std::path::absolute(given).unwrap_or_else(|_| given.to_owned())
}

fn print_one(what: &str, w: &WorkloadInfo) {
    output::fields(&[
        (what, w.name.clone()),
        ("address", w.address.to_string()),
        ("netns", w.netns.clone()),
        ("host interface", output::opt(&w.host_ifname)),
    ]);
}
