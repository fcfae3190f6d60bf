//! `vine config init|validate|show`.

use std::net::Ipv4Addr;

use anyhow::anyhow;
use serde::Serialize;
use vine_core::config::{Diagnostic, TemplateParams};
use vine_linux::config_file::{self, Validation};
use vine_linux::identity_store;

use crate::cli::{Cli, ConfigCommand, ConfigInitArgs, Format};
use crate::failure::{Failure, Outcome};
use crate::output;

pub(crate) fn run(cli: &Cli, cmd: &ConfigCommand) -> Outcome {
    match cmd {
        ConfigCommand::Init(args) => init(cli, args),
        ConfigCommand::Validate => validate(cli),
        ConfigCommand::Show => show(cli),
    }
}

#[derive(Serialize)]
struct Report<'a> {
    path: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
}

fn report(v: &Validation) -> Report<'_> {
    let (errors, warnings) = v.parsed.counts();
    Report {
        path: v.path.display().to_string(),
        valid: errors == 0,
        errors,
        warnings,
        diagnostics: &v.parsed.diagnostics,
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn print_diagnostics(v: &Validation, to_stderr: bool) {
    let path = v.path.display().to_string();
    for d in &v.parsed.diagnostics {
        if to_stderr {
            eprintln!("{}", d.render(&path));
        } else {
            println!("{}", d.render(&path));
        }
    }
}

fn validate(cli: &Cli) -> Outcome {
    let path = cli.config_path();
    let v = config_file::validate(&path)?;
    let r = report(&v);
    match cli.format {
        Format::Json => output::json(&r),
        Format::Text => {
            print_diagnostics(&v, false);
            match v.config() {
                Some(c) => println!(
                    "{}: valid ({}): node {} in network {}, prefix {}, {}, {}, {}",
                    r.path,
                    plural(r.warnings, "warning"),
                    c.node.name,
                    c.node.network_id,
                    c.tun.local_prefix(),
                    plural(c.allowed_peers.len(), "allowed peer"),
                    plural(c.bootstrap_peers.len(), "bootstrap peer"),
                    if c.node.act_as_relay {
                        "relays for others (act_as_relay = true)"
                    } else {
                        "relays nothing for others (act_as_relay = false)"
                    },
                ),
                None => println!(
                    "{}: invalid: {}, {}",
                    r.path,
                    plural(r.errors, "error"),
                    plural(r.warnings, "warning")
                ),
            }
        }
    }
    if r.valid {
        Ok(())
    } else {
        Err(Failure::Reported)
    }
}

fn show(cli: &Cli) -> Outcome {
    let path = cli.config_path();
    let v = config_file::validate(&path)?;
    let Some(config) = v.config() else {
        print_diagnostics(&v, true);
        let (errors, _) = v.parsed.counts();
        eprintln!(
            "error: config {} has {}; fix them to see the effective config",
            path.display(),
            plural(errors, "error")
        );
        return Err(Failure::Reported);
    };
    match cli.format {
        Format::Json => output::json(config),
        Format::Text => {
            let text = toml::to_string(config)
                .map_err(|e| anyhow!("cannot render the config as TOML: {e}"))?;
            println!(
                "# effective config of {} (defaults applied)\n{text}",
                path.display()
            );
        }
    }
    Ok(())
}

fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let label: String = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let label = label.trim_matches('-').to_owned();
    if label.is_empty() {
        "node".into()
    } else {
        label
    }
}

fn init(cli: &Cli, args: &ConfigInitArgs) -> Outcome {
    let path = cli.config_path();
    if !path.is_absolute() {
        return Err(anyhow!(
            "config path {} is not absolute; vine requires absolute config paths, e.g. -c {}",
            path.display(),
            std::env::current_dir()
                .map(|d| d.join(&path).display().to_string())
                .unwrap_or_else(|_| "/etc/libvine/vine.toml".into())
        )
        .into());
    }
    let identity_path = cli
        .identity
        .clone()
        .unwrap_or_else(|| vine_core::config::DEFAULT_IDENTITY_PATH.into());
    let Some((address, prefix_len)) = args
        .address
        .split_once('/')
        .and_then(|(a, l)| Some((a.parse::<Ipv4Addr>().ok()?, l.parse::<u8>().ok()?)))
    else {
        return Err(anyhow!(
            "--address {} is not ADDRESS/LENGTH; write it like --address 10.42.0.1/24",
            args.address
        )
        .into());
    };
    let local = match identity_store::load(&identity_path) {
        Ok(id) => Some(id.peer_id()),
        Err(identity_store::IdentityError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let params = TemplateParams {
        name: args.name.clone().unwrap_or_else(host_name),
        network_id: args.network_id.clone(),
        identity_path: identity_path.display().to_string(),
        runtime_dir: args.runtime_dir.clone(),
        listen_port: args.listen_port,
        tun_name: args.tun_name.clone(),
        address,
        prefix_len,
        local,
    };
    let text = vine_core::config::template(&params);
    // The template must validate as written; this also checks the flags
    // with the same rules (and messages) as the config itself.
    let parsed = vine_core::config::parse(&text);
    if parsed.has_errors() {
        for d in parsed.diagnostics.iter().filter(|d| d.is_error()) {
            eprintln!("error: {}", d.message);
            if let Some(h) = &d.hint {
                eprintln!("    help: {h}");
            }
        }
        eprintln!("error: nothing was written; fix the options above");
        return Err(Failure::Reported);
    }
    config_file::write_new(&path, &text, args.force)?;
    let next_identity = if local.is_none() {
        format!(
            "\n      create the identity first: vine identity init --identity {}",
            identity_path.display()
        )
    } else {
        String::new()
    };
    output::emit(
        cli.format,
        &serde_json::json!({
            "path": path.display().to_string(),
            "identity_path": identity_path.display().to_string(),
            "peer_id": local,
        }),
        || {
            println!("wrote {}", path.display());
            println!(
                "next: add peers to [[allowed_peers]], then run `vine config validate -c {}`{next_identity}",
                path.display()
            );
        },
    );
    Ok(())
}
