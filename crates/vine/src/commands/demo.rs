//! `vine demo`: the seed's multi-PC showcase on one machine.
//!
//! As root, it builds the showcase in network namespaces with the NAT lab
//! of `vine-lab` (nftables routers; the end-to-end tests build theirs with
//! the same crate): a relay on a simulated internet, alpha and beta on a
//! home LAN behind a port-restricted NAT, gamma behind another one and
//! delta behind a symmetric NAT. It creates identities and configs with
//! vine's own code, starts real daemons (this binary), and narrates: the
//! path classes (direct, signaling_then_direct, relay), a cut between alpha
//! and beta (fallback to the relay, counters rising) and its repair
//! (promotion back to direct).
//!
//! Cleanup: on a normal end and on an error a guard stops the daemons by
//! PID, deletes the namespaces and removes the working directory. SIGINT
//! and SIGTERM are caught (tokio's handlers, on a thread of their own; no
//! signal mask is touched, so the daemons started here inherit none) and
//! do the same cleanup under the lab's lock, then exit with 130.

mod world;

use std::fs;
use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::signal::unix::{SignalKind, signal};
use vine_daemon::api::SessionInfo;
use vine_lab::netns::Janitor;

use self::world::{MACHINES, NETWORK_ID, Place, World};
use crate::cli::DemoArgs;
use crate::failure::Outcome;

/// The working directory; removed again at the end.
fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("vine-demo-{}", std::process::id()))
}

/// Removes everything the demo made when dropped (normal end or error).
struct Cleanup {
    janitor: Janitor,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (pids, namespaces) = self.janitor.pending();
        println!("\ncleaning up: stopping {pids} daemons, removing {namespaces} namespaces");
        self.janitor.cleanup();
        let _ = fs::remove_dir_all(&self.dir);
        println!("cleaned up: no namespace, process or file of the demo is left");
    }
}

/// On SIGINT or SIGTERM: clean up under the lab's lock and exit 130. The
/// handlers are installed before this returns, so no signal is missed.
fn watch_signals(janitor: Janitor, dir: PathBuf) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal watcher")?;
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("cannot install the SIGINT/SIGTERM handlers")?;
    thread::spawn(move || {
        let name = rt.block_on(async {
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        });
        eprintln!("\n{name}: stopping the demo's daemons and removing its namespaces");
        janitor.cleanup_then(|| {
            let _ = fs::remove_dir_all(&dir);
            eprintln!("cleaned up");
            std::process::exit(130)
        })
    });
    Ok(())
}

pub(crate) fn run(args: &DemoArgs) -> Outcome {
    preflight()?;
    let dir = work_dir();
    let _ = fs::remove_dir_all(&dir);
    let janitor = Janitor::default();
    watch_signals(janitor.clone(), dir.clone())?;
    let pause = !args.no_pause && io::stdin().is_terminal();
    // Declared before the cleanup guard, so the guard runs first on every
    // way out (it reports what it removes); the lab's own drop then finds
    // nothing left.
    let mut demo = Demo {
        world: None,
        pause,
        step: 0,
    };
    let cleanup = Cleanup {
        janitor: janitor.clone(),
        dir: dir.clone(),
    };

    println!("vine demo: the multi-PC showcase on this machine, in network namespaces");
    println!("(real daemons, real NATs made with nftables; everything is removed at the end)\n");

    demo.header("Build the networks");
    demo.world = Some(World::build(&dir, janitor)?);
    demo.show_topology();
    demo.pause()?;

    demo.header("Identities and configs");
    demo.world_mut().write_configs()?;
    demo.show_identities();
    demo.pause()?;

    demo.header("Start the daemons, the relay first");
    for i in 0..MACHINES.len() {
        let pid = demo.world_mut().start(i)?;
        let n = &demo.world().nodes[i];
        println!(
            "  {:<6} vine daemon start   pid {pid:<7} overlay {}",
            n.name,
            n.prefix()
        );
    }
    demo.pause()?;

    demo.header("Paths: direct, signaling, relay");
    demo.paths()?;
    demo.pause()?;

    demo.header("Cut alpha <-> beta (an nftables drop on both hosts)");
    let cut = demo.cut()?;
    demo.pause()?;

    demo.header("Restore alpha <-> beta");
    demo.restore(cut)?;
    println!("\nthe demo is over.");
    drop(cleanup);
    drop(demo);
    Ok(())
}

/// Root and the tools the lab needs.
fn preflight() -> anyhow::Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "vine demo builds network namespaces, NAT routers and TUN devices: run it as root (sudo vine demo)"
        );
    }
    let missing: Vec<&str> = [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("ping", "iputils-ping"),
    ]
    .into_iter()
    .filter(|(tool, _)| !on_path(tool))
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        bail!(
            "vine demo needs {}: apt-get install {} (or run sudo ./scripts/demo.sh from the source tree, which installs them)",
            missing.join(", "),
            missing.join(" ")
        );
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

struct Demo {
    world: Option<World>,
    pause: bool,
    step: usize,
}

/// The class every (from, to) pair must show.
const STORY: [(&str, &str, &str); 12] = [
    ("alpha", "beta", "direct"),
    ("beta", "alpha", "direct"),
    ("gamma", "beta", "signaling_then_direct"),
    ("beta", "gamma", "signaling_then_direct"),
    ("gamma", "alpha", "signaling_then_direct"),
    ("alpha", "gamma", "signaling_then_direct"),
    ("delta", "alpha", "relay"),
    ("alpha", "delta", "relay"),
    ("delta", "beta", "relay"),
    ("beta", "delta", "relay"),
    ("delta", "gamma", "relay"),
    ("gamma", "delta", "relay"),
];

impl Demo {
    fn world(&self) -> &World {
        self.world.as_ref().expect("set right after it is built")
    }

    fn world_mut(&mut self) -> &mut World {
        self.world.as_mut().expect("set right after it is built")
    }

    fn header(&mut self, title: &str) {
        self.step += 1;
        println!("\n== Step {}/6: {title}", self.step);
    }

    fn pause(&self) -> anyhow::Result<()> {
        if !self.pause {
            return Ok(());
        }
        print!("\n   [Enter] to continue, Ctrl-C to stop ");
        io::stdout().flush()?;
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Ok(())
    }

    fn show_topology(&self) {
        let w = self.world();
        let names = |place: Place| -> String {
            w.nodes
                .iter()
                .filter(|n| n.place == place)
                .map(|n| format!("{} {}", n.name, n.machine.address))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("  internet 203.0.113.0/24 (a bridge in its own namespace)");
        println!(
            "    {}  (public; bootstrap and relay)",
            names(Place::Internet)
        );
        for (site, place, what) in [
            (&w.sites[0], Place::Home, "home LAN, port-restricted NAT"),
            (&w.sites[1], Place::Cafe, "cafe LAN, port-restricted NAT"),
            (&w.sites[2], Place::Mobile, "mobile network, symmetric NAT"),
        ] {
            println!(
                "    router {} -> {what} (gateway {}): {}",
                site.public,
                site.gateway,
                names(place)
            );
        }
    }

    fn show_identities(&self) {
        let w = self.world();
        for n in &w.nodes {
            if let Some(id) = &n.identity {
                println!(
                    "  {:<6} {}  fingerprint {}  owns {}",
                    n.name,
                    id.peer_id(),
                    id.fingerprint(),
                    n.prefix()
                );
            }
        }
        println!(
            "  network {NETWORK_ID}: everyone allowlists everyone (PeerId bound to its prefix);\n  only the relay is relay_capable; alpha, beta, gamma and delta bootstrap from it.\n  configs: {}/<name>/vine.toml",
            w.dir.display()
        );
    }

    fn print_sessions(&self, i: usize) -> anyhow::Result<()> {
        let w = self.world();
        let sessions = w.sessions(i)?;
        println!("  {}'s sessions (vine sessions):", w.nodes[i].name);
        println!(
            "    {:<6} {:<22} {:<28} {:>8}",
            "PEER", "CLASS", "VIA", "RTT"
        );
        for s in &sessions {
            println!(
                "    {:<6} {:<22} {:<28} {:>8}",
                w.name_of(&s.peer_id).unwrap_or("?"),
                s.class.as_deref().unwrap_or("-"),
                s.via.as_deref().unwrap_or("-"),
                rtt(s)
            );
        }
        Ok(())
    }

    fn story_holds(&self) -> bool {
        let w = self.world();
        STORY
            .iter()
            .all(|(a, b, class)| w.class(w.index(a), w.index(b)).as_deref() == Some(*class))
    }

    fn paths(&mut self) -> anyhow::Result<()> {
        let w = self.world();
        let n = w.nodes.len();
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .collect();
        print!("  pinging every pair over the overlay ... ");
        io::stdout().flush()?;
        let t0 = Instant::now();
        let failed: Vec<String> = thread::scope(|scope| {
            let handles: Vec<_> = pairs
                .iter()
                .map(|&(a, b)| {
                    scope.spawn(move || {
                        let deadline = Instant::now() + Duration::from_secs(30);
                        while Instant::now() < deadline {
                            if w.ping(a, b) {
                                return None;
                            }
                        }
                        Some(format!("{} -> {}", w.nodes[a].name, w.nodes[b].name))
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap_or(Some("a ping thread".into())))
                .collect()
        });
        if !failed.is_empty() {
            bail!("no answer over the overlay: {}", failed.join(", "));
        }
        println!("{} of {} answer", pairs.len(), pairs.len());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.story_holds() {
            if Instant::now() > deadline {
                for i in 1..n {
                    self.print_sessions(i)?;
                }
                bail!("the paths did not settle into the showcase's classes within 30 s");
            }
            thread::sleep(Duration::from_millis(200));
        }
        println!(
            "  every path settled {:.1} s after the first ping\n",
            t0.elapsed().as_secs_f64()
        );
        for name in ["alpha", "gamma", "delta"] {
            self.print_sessions(self.world().index(name))?;
        }
        println!(
            "\n  alpha <-> beta  direct                 same LAN: each reaches the other's own address"
        );
        println!(
            "  gamma <-> beta  signaling_then_direct  both behind NATs: the relay told each the other's\n                                         public mapping and both sent at once (hole punching)"
        );
        println!(
            "  delta <-> *     relay                  delta's symmetric NAT picks a new port per peer:\n                                         no mapping to punch, so traffic goes through the relay,\n                                         still end-to-end encrypted"
        );
        let relay = self.world().index("relay");
        println!(
            "  relay has forwarded {} frames for others so far",
            self.world().counter(relay, |c| c.relayed_for_others)
        );
        Ok(())
    }

    fn cut(&mut self) -> anyhow::Result<vine_lab::natlab::Rule> {
        let (a, b, r) = {
            let w = self.world();
            (w.index("alpha"), w.index("beta"), w.index("relay"))
        };
        let target = self.world().nodes[b].overlay.to_string();
        let host = self.world().nodes[a].machine.host.clone();
        self.world_mut()
            .nat
            .lab_mut()
            .try_spawn(&host, "ping", &["-q", "-i", "0.2", "-w", "120", &target])
            .context("starting ping in alpha")?;
        println!("  traffic: alpha pings beta five times a second");
        let w = self.world_mut();
        let (ma, mb) = (w.nodes[a].machine.clone(), w.nodes[b].machine.clone());
        let usage0 = w.counter(a, |c| c.relay_usage);
        let relayed0 = w.counter(r, |c| c.relayed_for_others);
        let rule = w.nat.cut(&ma, &mb).context("cutting alpha <-> beta")?;
        let w = self.world();
        let t0 = Instant::now();
        let mut last = Instant::now() - Duration::from_secs(1);
        loop {
            let class = w.class(a, b);
            if last.elapsed() >= Duration::from_millis(500) || class.as_deref() == Some("relay") {
                last = Instant::now();
                println!(
                    "  t={:>4.1}s  alpha -> beta {:<8} relay_usage {}",
                    t0.elapsed().as_secs_f64(),
                    class.as_deref().unwrap_or("-"),
                    w.counter(a, |c| c.relay_usage)
                );
            }
            if class.as_deref() == Some("relay") {
                break;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                bail!("alpha did not fall back to the relay within 20 s");
            }
            thread::sleep(Duration::from_millis(100));
        }
        let failover = t0.elapsed();
        let prefix = w.nodes[b].prefix();
        let beta_id = w.nodes[b].identity.as_ref().map(|i| i.peer_id());
        let route = w.routes(a)?.into_iter().find(|r| r.prefix == prefix);
        match route {
            Some(r) if Some(r.peer) == beta_id && r.state == "installed" => println!(
                "  -> alpha fell back to the relay after {:.1} s; its route to {prefix} is still beta's ({})",
                failover.as_secs_f64(),
                r.state
            ),
            other => bail!("alpha's route to {prefix} changed during the fallback: {other:?}"),
        }
        // Counters rise while the cut lasts.
        let mut rising = false;
        for _ in 0..3 {
            thread::sleep(Duration::from_secs(1));
            let usage = w.counter(a, |c| c.relay_usage);
            let relayed = w.counter(r, |c| c.relayed_for_others);
            rising |= usage > usage0;
            println!(
                "  alpha relay_usage {usage0} -> {usage}   fallback_transitions {}   relay relayed_for_others {relayed0} -> {relayed}",
                w.counter(a, |c| c.fallback_transitions)
            );
        }
        if !rising {
            bail!("alpha's relay_usage did not rise while alpha <-> beta was cut");
        }
        self.print_sessions(a)?;
        Ok(rule)
    }

    fn restore(&mut self, rule: vine_lab::natlab::Rule) -> anyhow::Result<()> {
        let (a, b) = {
            let w = self.world();
            (w.index("alpha"), w.index("beta"))
        };
        self.world_mut()
            .nat
            .remove(rule)
            .context("removing the cut")?;
        let w = self.world();
        let t0 = Instant::now();
        while w.class(a, b).as_deref() != Some("direct")
            || w.class(b, a).as_deref() != Some("direct")
        {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("alpha <-> beta were not promoted back to direct within 30 s");
            }
            thread::sleep(Duration::from_millis(100));
        }
        println!(
            "  -> alpha and beta promoted back to direct after {:.1} s (three answered probes in a row)",
            t0.elapsed().as_secs_f64()
        );
        let u1 = w.counter(a, |c| c.relay_usage);
        thread::sleep(Duration::from_secs(1));
        let u2 = w.counter(a, |c| c.relay_usage);
        println!("  alpha relay_usage {u1} -> {u2} over a second: the relay is out of the path");
        self.print_sessions(a)?;
        Ok(())
    }
}

fn rtt(s: &SessionInfo) -> String {
    s.via
        .as_ref()
        .and_then(|via| s.paths.iter().find(|p| &p.via == via))
        .and_then(|p| p.rtt_us)
        .map_or_else(
            || "-".to_owned(),
            |us| format!("{:.2} ms", us as f64 / 1000.0),
        )
}
