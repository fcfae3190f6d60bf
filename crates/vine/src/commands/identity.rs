//! `vine identity init|show|export-public|fingerprint`.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use serde::Serialize;
use vine_core::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_IDENTITY_PATH};
use vine_linux::config_file::{self, ConfigFileError};
use vine_linux::identity_store;

use crate::allowlist::{Export, allowlist_snippet};
use crate::cli::{Cli, Format, IdentityCommand};
use crate::failure::Outcome;
use crate::output;

/// The config, if one is there to consult. A missing default config is
/// fine (identity commands work without one); a missing explicit `-c` file
/// or an invalid config is an error, because guessing the identity path
/// could create or show the wrong node.
pub(crate) fn optional_config(cli: &Cli) -> anyhow::Result<Option<Config>> {
    let path = cli.config_path();
    let text = match config_file::read(&path) {
        Ok((text, _)) => text,
        Err(ConfigFileError::NotFound(_)) if cli.config.is_none() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parsed = vine_core::config::parse(&text);
    match parsed.config {
        Some(config) => Ok(Some(config)),
        None => {
            let (errors, _) = parsed.counts();
            Err(anyhow!(
                "config {} has {errors} error(s); run `vine config validate -c {}` to see them, or pass --identity PATH",
                path.display(),
                path.display()
            ))
        }
    }
}

/// The identity path: `--identity`, else the config's `identity_path`,
/// else the default. Also returns the config when one was read.
pub(crate) fn resolve(cli: &Cli) -> anyhow::Result<(PathBuf, Option<Config>)> {
    if let Some(path) = &cli.identity {
        // The config only adds the node name and prefix to exports here, so
        // an unreadable one is not fatal when the path is explicit.
        let config = optional_config(cli).ok().flatten();
        return Ok((path.clone(), config));
    }
    let config = optional_config(cli)?;
    let path = config
        .as_ref()
        .map_or(DEFAULT_IDENTITY_PATH, |c| c.node.identity_path.as_str());
    Ok((PathBuf::from(path), config))
}

#[derive(Serialize)]
struct Created<'a> {
    path: String,
    #[serde(flatten)]
    record: &'a vine_core::identity::PublicRecord,
}

#[derive(Serialize)]
struct Shown {
    path: String,
    format: &'static str,
    #[serde(flatten)]
    record: vine_core::identity::PublicRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
}

pub(crate) fn run(cli: &Cli, cmd: &IdentityCommand) -> Outcome {
    let (path, config) = resolve(cli)?;
    if !path.is_absolute() {
        return Err(anyhow!(
            "identity path {} is not absolute; pass a full path such as {DEFAULT_IDENTITY_PATH}",
            path.display()
        )
        .into());
    }
    let name = config.as_ref().map(|c| c.node.name.as_str());
    match cmd {
        IdentityCommand::Init { force } => {
            let identity = identity_store::create(&path, *force)?;
            let record = identity.public_record(name);
            output::emit(
                cli.format,
                &Created {
                    path: path.display().to_string(),
                    record: &record,
                },
                || {
                    println!("created identity {}", path.display());
                    output::fields(&[
                        ("  peer_id", record.peer_id.to_string()),
                        ("  fingerprint", record.fingerprint.to_string()),
                    ]);
                    let config_hint = if cli.config.is_some() || config.is_some() {
                        format!(" -c {}", cli.config_path().display())
                    } else {
                        String::new()
                    };
                    println!(
                        "next: `vine identity export-public{config_hint}` prints the entry other nodes add to their [[allowed_peers]]"
                    );
                    if config.is_none() {
                        println!(
                            "      `vine config init -c {DEFAULT_CONFIG_PATH} --identity {}` writes a config for this node",
                            path.display()
                        );
                    }
                },
            );
        }
        IdentityCommand::Show { show_secret } => {
            let identity = identity_store::load(&path)?;
            let shown = Shown {
                path: path.display().to_string(),
                format: vine_core::identity::FORMAT_V1,
                record: identity.public_record(name),
                seed: show_secret.then(|| identity.seed_hex().to_string()),
            };
            output::emit(cli.format, &shown, || {
                let mut rows = vec![
                    ("identity", shown.path.clone()),
                    ("format", shown.format.to_owned()),
                ];
                if let Some(name) = &shown.record.name {
                    rows.push(("name", name.clone()));
                }
                rows.extend([
                    ("peer_id", shown.record.peer_id.to_string()),
                    ("fingerprint", shown.record.fingerprint.to_string()),
                    ("public_key", shown.record.public_key.clone()),
                    (
                        "signing_public_key",
                        shown.record.signing_public_key.clone(),
                    ),
                    (
                        "seed",
                        shown
                            .seed
                            .clone()
                            .unwrap_or_else(|| "(secret; add --show-secret to print it)".into()),
                    ),
                ]);
                output::fields(&rows);
            });
        }
        IdentityCommand::ExportPublic => {
            let identity = identity_store::load(&path)?;
            let prefix = config.as_ref().map(|c| c.tun.local_prefix().to_string());
            let export = Export {
                record: identity.public_record(name),
                prefix,
            };
            match cli.format {
                Format::Json => output::json(&export),
                Format::Text => print!("{}", allowlist_snippet(&export)),
            }
        }
        IdentityCommand::Fingerprint => {
            let identity = identity_store::load(&path)
                .with_context(|| "cannot print the fingerprint".to_owned())?;
            let record = identity.public_record(name);
            output::emit(
                cli.format,
                &serde_json::json!({
                    "peer_id": record.peer_id,
                    "fingerprint": record.fingerprint,
                }),
                || println!("{}", record.fingerprint),
            );
        }
    }
    Ok(())
}
