//! The demo's world: the NAT lab, one vine node per machine, the files each
//! node needs (identity and config, made with vine's own code) and the
//! daemons (this very binary, started inside the namespaces).

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use vine_core::config::{TemplateParams, template};
use vine_core::identity::Identity;
use vine_daemon::api::client;
use vine_daemon::api::{CountersInfo, RequestBody, ResponseBody, RouteInfo, SessionInfo};
use vine_lab::natlab::{Machine, NatKind, NatLab, Site};
use vine_lab::netns::Janitor;
use vine_linux::{config_file, identity_store};

/// The overlay the demo builds.
pub(super) const NETWORK_ID: &str = "demo-net";

/// Where a machine sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// On the internet, no NAT.
    Internet,
    /// On the home LAN, behind a port-restricted NAT.
    Home,
    /// On a café LAN, behind another port-restricted NAT.
    Cafe,
    /// On a mobile network, behind a symmetric NAT.
    Mobile,
}

/// The five machines: name, place, overlay address, relay-capable.
pub(super) const MACHINES: [(&str, Place, [u8; 4], bool); 5] = [
    ("relay", Place::Internet, [10, 42, 254, 1], true),
    ("alpha", Place::Home, [10, 42, 0, 1], false),
    ("beta", Place::Home, [10, 42, 1, 1], false),
    ("gamma", Place::Cafe, [10, 42, 2, 1], false),
    ("delta", Place::Mobile, [10, 42, 3, 1], false),
];

/// One node of the demo.
pub(super) struct DemoNode {
    /// Its name.
    pub name: &'static str,
    /// Its machine in the lab.
    pub machine: Machine,
    /// Where that machine sits.
    pub place: Place,
    /// Overlay address (it owns the /24 around it).
    pub overlay: Ipv4Addr,
    /// Marked relay-capable in everyone's allowlist.
    pub relay_capable: bool,
    /// Its identity (created by `build`).
    pub identity: Option<Identity>,
    /// Its config file.
    pub config: PathBuf,
    /// Its runtime directory (pidfile, control socket, log).
    pub run_dir: PathBuf,
}

impl DemoNode {
    /// The /24 it owns, as text.
    pub fn prefix(&self) -> String {
        let [a, b, c, _] = self.overlay.octets();
        format!("{a}.{b}.{c}.0/24")
    }

    fn socket(&self) -> PathBuf {
        self.run_dir.join("vine.sock")
    }
}

/// Everything the demo made.
pub(super) struct World {
    /// The namespaces, routers and faults.
    pub nat: NatLab,
    /// The sites, in the order home, cafe, mobile.
    pub sites: Vec<Site>,
    /// The nodes, in [`MACHINES`] order.
    pub nodes: Vec<DemoNode>,
    /// Working directory (identities, configs, runtime dirs).
    pub dir: PathBuf,
    exe: PathBuf,
}

/// How long an api request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

impl World {
    /// Builds the networks: the internet, three NATed LANs, five machines.
    /// Every namespace and daemon is registered with `janitor`.
    pub fn build(dir: &Path, janitor: Janitor) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the running vine binary")?;
        let mut nat = NatLab::try_with_janitor(janitor).context("cannot build the NAT lab")?;
        let home = nat.site("home", NatKind::PortRestricted)?;
        let cafe = nat.site("cafe", NatKind::PortRestricted)?;
        let mobile = nat.site("mobile", NatKind::Symmetric)?;
        let mut nodes = Vec::new();
        for (name, place, overlay, relay_capable) in MACHINES {
            let machine = match place {
                Place::Internet => nat.public_host(name)?,
                Place::Home => nat.lan_host(&home, name)?,
                Place::Cafe => nat.lan_host(&cafe, name)?,
                Place::Mobile => nat.lan_host(&mobile, name)?,
            };
            let node_dir = dir.join(name);
            nodes.push(DemoNode {
                name,
                machine,
                place,
                overlay: Ipv4Addr::from(overlay),
                relay_capable,
                identity: None,
                config: node_dir.join("vine.toml"),
                run_dir: node_dir.join("run"),
            });
        }
        Ok(Self {
            nat,
            sites: vec![home, cafe, mobile],
            nodes,
            dir: dir.to_owned(),
            exe,
        })
    }

    /// Creates every node's identity and config (everyone allowlists
    /// everyone, only the relay is relay-capable and acts as a relay,
    /// everyone bootstraps from the relay) and validates the configs.
    pub fn write_configs(&mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            let node_dir = n.config.parent().unwrap_or(&self.dir).to_owned();
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&node_dir)
                .with_context(|| format!("creating {}", node_dir.display()))?;
            let identity = identity_store::create(&node_dir.join("identity"), false)
                .with_context(|| format!("creating {}'s identity", n.name))?;
            n.identity = Some(identity);
        }
        let relay = self
            .nodes
            .iter()
            .find(|n| n.relay_capable)
            .ok_or_else(|| anyhow!("the demo has no relay"))?;
        let relay_id = relay
            .identity
            .as_ref()
            .map(Identity::peer_id)
            .ok_or_else(|| anyhow!("relay has no identity"))?;
        let bootstrap = format!(
            "\n# Everyone finds the network through the relay.\n[[bootstrap_peers]]\npeer_id = \"{relay_id}\"\naddress = \"udp://{}:4100\"\n",
            relay.machine.address
        );
        let entries: Vec<(&str, String)> = self
            .nodes
            .iter()
            .filter_map(|n| {
                n.identity.as_ref().map(|id| {
                    (
                        n.name,
                        crate::allowlist::allowlist_entry(id, n.name, &n.prefix(), n.relay_capable),
                    )
                })
            })
            .collect();
        for n in &self.nodes {
            let identity = n
                .identity
                .as_ref()
                .ok_or_else(|| anyhow!("{} has no identity", n.name))?;
            let identity_path = n
                .config
                .with_file_name("identity")
                .to_string_lossy()
                .into_owned();
            let mut text = template(&TemplateParams {
                name: n.name.to_owned(),
                network_id: NETWORK_ID.to_owned(),
                identity_path,
                runtime_dir: n.run_dir.to_string_lossy().into_owned(),
                listen_port: 4100,
                tun_name: "vine0".to_owned(),
                address: n.overlay,
                prefix_len: 24,
                local: Some(identity.peer_id()),
            });
            if n.relay_capable {
                // The relay opts in to relaying for the others. Public and
                // reached directly by everyone, it needs neither a relay
                // nor hole punching for its own paths (it still signals
                // for the others).
                text = text
                    .replace("act_as_relay = false", "act_as_relay = true")
                    .replace("allow_relay = true", "allow_relay = false")
                    .replace(
                        "allow_signaling_upgrade = true",
                        "allow_signaling_upgrade = false",
                    );
            } else {
                text.push_str(&bootstrap);
            }
            for (name, entry) in &entries {
                if *name != n.name {
                    text.push('\n');
                    text.push_str(entry);
                }
            }
            config_file::write_new(&n.config, &text, false)?;
            let v = config_file::validate(&n.config)?;
            if v.config().is_none() {
                let path = n.config.display().to_string();
                let problems: Vec<String> = v
                    .parsed
                    .diagnostics
                    .iter()
                    .map(|d| d.render(&path))
                    .collect();
                bail!(
                    "the demo wrote an invalid config for {}:\n{}",
                    n.name,
                    problems.join("\n")
                );
            }
        }
        Ok(())
    }

    /// Starts node `i`'s daemon (`vine daemon start` inside its namespace)
    /// and registers its PID with the lab; returns the PID.
    pub fn start(&mut self, i: usize) -> anyhow::Result<i32> {
        let n = &self.nodes[i];
        let exe = self.exe.to_string_lossy().into_owned();
        let config = n.config.to_string_lossy().into_owned();
        let out = self
            .nat
            .lab()
            .try_exec(&n.machine.host, &exe, &["daemon", "start", "-c", &config])
            .with_context(|| format!("starting {}", n.name))?;
        let pid = fs::read_to_string(n.run_dir.join("vine.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            self.nat.lab_mut().track_pid(pid);
        }
        match (out.status.success(), pid) {
            (true, Some(pid)) => Ok(pid),
            _ => bail!(
                "{}'s daemon did not start: {}{}\nlog:\n{}",
                n.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                fs::read_to_string(n.run_dir.join("vine.log")).unwrap_or_default()
            ),
        }
    }

    /// Node `i`'s sessions from its control socket.
    pub fn sessions(&self, i: usize) -> anyhow::Result<Vec<SessionInfo>> {
        match client::request(
            &self.nodes[i].socket(),
            RequestBody::Sessions,
            REQUEST_TIMEOUT,
        )? {
            ResponseBody::Sessions(s) => Ok(s),
            other => bail!("unexpected answer to sessions: {other:?}"),
        }
    }

    /// Node `i`'s overlay routes.
    pub fn routes(&self, i: usize) -> anyhow::Result<Vec<RouteInfo>> {
        match client::request(
            &self.nodes[i].socket(),
            RequestBody::Routes,
            REQUEST_TIMEOUT,
        )? {
            ResponseBody::Routes(r) => Ok(r),
            other => bail!("unexpected answer to routes: {other:?}"),
        }
    }

    /// Node `i`'s counters.
    pub fn counters(&self, i: usize) -> anyhow::Result<CountersInfo> {
        match client::request(
            &self.nodes[i].socket(),
            RequestBody::Counters,
            REQUEST_TIMEOUT,
        )? {
            ResponseBody::Counters(c) => Ok(c),
            other => bail!("unexpected answer to counters: {other:?}"),
        }
    }

    /// One counter of node `i`, picked by `which` (0 when the counters
    /// cannot be read).
    pub fn counter(&self, i: usize, which: impl FnOnce(&CountersInfo) -> u64) -> u64 {
        self.counters(i).map_or(0, |c| which(&c))
    }

    /// The class of node `from`'s preferred path to node `to`.
    pub fn class(&self, from: usize, to: usize) -> Option<String> {
        let id = self.nodes[to].identity.as_ref()?.peer_id();
        self.sessions(from)
            .ok()?
            .into_iter()
            .find(|s| s.peer_id == id)
            .and_then(|s| s.class)
    }

    /// One ping over the overlay from node `from` to node `to`.
    pub fn ping(&self, from: usize, to: usize) -> bool {
        self.nat
            .lab()
            .try_exec(
                &self.nodes[from].machine.host,
                "ping",
                &["-c", "1", "-W", "1", &self.nodes[to].overlay.to_string()],
            )
            .is_ok_and(|o| o.status.success())
    }

    /// Index of the node called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_default()
    }

    /// The name of the node with PeerId `id`.
    pub fn name_of(&self, id: &vine_core::PeerId) -> Option<&'static str> {
        self.nodes
            .iter()
            .find(|n| n.identity.as_ref().is_some_and(|i| i.peer_id() == *id))
            .map(|n| n.name)
    }
}
