//! The command tree (clap derive): every command, flag and argument, and
//! the version string.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Version string with the git commit, e.g. `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("VINE_GIT_COMMIT"),
    ")"
);

/// vine — an authenticated IPv4 overlay VPN for Linux.
#[derive(Debug, Parser)]
#[command(
    name = "vine",
    version = LONG_VERSION,
    about = "vine: an authenticated IPv4 overlay VPN for Linux",
    long_about = "vine joins this host to a named overlay network. Each node has a persistent identity \
(PeerId), owns one overlay prefix, and reaches allowlisted peers directly, through NAT hole punching, \
or through a relay.",
    after_help = "Exit codes: 0 ok, 1 failure or invalid input, 2 usage error.",
    propagate_version = true
)]
pub struct Cli {
    /// Config file [default: /etc/libvine/vine.toml].
    #[arg(short = 'c', long = "config", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// More log output from the daemon (-v debug, -vv trace); RUST_LOG
    /// overrides it.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Identity file (overrides the config's identity_path).
    #[arg(long, global = true, value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The config path: `-c` or the default.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(vine_core::config::DEFAULT_CONFIG_PATH))
    }
}

/// Output format of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the version and git commit.
    Version,
    /// Manage this node's persistent identity.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Create, validate and show the node config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Control the long-running daemon.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Start the node in the foreground.
    Up,
    /// Stop a running node.
    Down,
    /// Node and network state.
    Status,
    /// Allowlisted peers and their state.
    Peers,
    /// Overlay routes and their owners.
    Routes,
    /// Sessions and their path class per peer.
    Sessions(SessionsArgs),
    /// Packet, route and fallback counters.
    Counters,
    /// Everything above in one document.
    Snapshot,
    /// Probe an overlay address and show the path that carries it.
    Ping(PingArgs),
    /// Attach a network namespace to the overlay as a workload: it gets
    /// the next free address of this node's prefix, an eth0 and a default
    /// route via this node.
    Attach(AttachArgs),
    /// Detach a workload: its links go and its address is free again.
    Detach(DetachArgs),
    /// The attached workloads (name, address, netns, since, host interface).
    Workloads,
    /// Check that this host can run vine.
    Doctor,
    /// Run the multi-PC showcase on this machine, in network namespaces
    /// (as root): direct, hole-punched and relayed paths, a cut and its
    /// repair, with live session tables. Removes everything it made.
    Demo(DemoArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// `vine identity …`
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a new identity (refuses to replace one without --force).
    Init {
        /// Replace an existing identity. The node gets a new PeerId.
        #[arg(long)]
        force: bool,
    },
    /// Show the identity (the secret seed only with --show-secret).
    Show {
        /// Also print the secret seed.
        #[arg(long)]
        show_secret: bool,
    },
    /// Print the public record to paste into other nodes' [[allowed_peers]].
    ExportPublic,
    /// Print the fingerprint for out-of-band comparison.
    Fingerprint,
}

/// `vine config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented config template to the -c path.
    Init(ConfigInitArgs),
    /// Report every problem in the config, with line, column and fix.
    Validate,
    /// Print the effective config with defaults applied.
    Show,
}

/// Options of `vine config init`.
#[derive(Debug, Args)]
pub struct ConfigInitArgs {
    /// Node name (default: this host's name, or "node").
    #[arg(long)]
    pub name: Option<String>,
    /// Overlay network id, identical on every node.
    #[arg(long, default_value = "home-net")]
    pub network_id: String,
    /// This node's overlay address and prefix length.
    #[arg(long, value_name = "ADDRESS/LEN", default_value = "10.42.0.1/24")]
    pub address: String,
    /// Underlay UDP port.
    #[arg(long, default_value_t = vine_core::config::DEFAULT_LISTEN_PORT)]
    pub listen_port: u16,
    /// TUN interface name.
    #[arg(long, default_value = vine_core::config::DEFAULT_TUN_NAME)]
    pub tun_name: String,
    /// Runtime directory (pidfile, state, control socket).
    #[arg(long, default_value = vine_core::config::DEFAULT_RUNTIME_DIR)]
    pub runtime_dir: String,
    /// Replace an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// `vine daemon …`
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Run in the foreground.
    Run,
    /// Start in the background and write a pidfile.
    Start,
    /// Stop the background daemon.
    Stop,
    /// Report the daemon's phase and pid.
    Status,
}

/// Options of `vine ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Overlay IPv4 address to probe.
    pub address: Ipv4Addr,
    /// Probes to send over the path (1–10), 200 ms apart.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub count: u32,
}

/// Options of `vine attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Workload name: a DNS label (letters, digits, `-`; at most 63).
    pub name: String,
    /// The network namespace: a name under /run/netns (`ip netns add
    /// NAME`), /proc/PID/ns/net, or any bind mount of a namespace file.
    #[arg(long, value_name = "PATH")]
    pub netns: PathBuf,
}

/// Options of `vine detach`.
#[derive(Debug, Args)]
pub struct DetachArgs {
    /// Workload name.
    pub name: String,
}

/// Options of `vine sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// Show the recent path attempts for one peer and why each turned out
    /// as it did (needs the running daemon).
    #[arg(long, value_name = "PEER")]
    pub explain: Option<String>,
}

/// Options of `vine demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Do not wait for Enter between the steps (the default when stdin is
    /// not a terminal).
    #[arg(long)]
    pub no_pause: bool,
}

/// Options of `vine completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    pub shell: clap_complete::Shell,
}
