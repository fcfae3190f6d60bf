//! Kernel routes that send overlay prefixes into the TUN device, managed
//! over netlink (main table, `proto static`, `scope link`).
//!
//! [`Routes`] remembers what it added so that [`Routes::remove_all`] can
//! undo exactly that on every exit path; routes it did not add are never
//! touched by `remove_all`.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use netlink_packet_route::route::{RouteProtocol, RouteType};
use vine_core::net::Ipv4Prefix;

use crate::error::HostError;
use crate::netlink::{Netlink, Route};

/// Routes through the TUN, installed and removed synchronously.
///
/// The netlink socket belongs to the network namespace of the thread that
/// called [`Routes::new`].
pub struct Routes {
    nl: Netlink,
    /// Routes this value added: prefix → ifindex.
    added: BTreeMap<Ipv4Prefix, u32>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("added", &self.added)
            .finish_non_exhaustive()
    }
}

impl Routes {
    /// Opens a netlink route socket.
    pub fn new() -> Result<Routes, HostError> {
        let nl =
            Netlink::new().map_err(|e| HostError::netlink("open a netlink route socket", e))?;
        Ok(Routes {
            nl,
            added: BTreeMap::new(),
        })
    }

    /// Routes `prefix` through the interface `ifindex`. An identical route
    /// that already exists is success (and is not recorded as added unless
    /// this value added it); a route for the same prefix through another
    /// interface is [`HostError::RouteExists`].
    pub fn install(&mut self, prefix: Ipv4Prefix, ifindex: u32) -> Result<(), HostError> {
        match self.nl.change_route(prefix, ifindex, true) {
            Ok(()) => {
                self.added.insert(prefix, ifindex);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let routes = self.dump()?;
                let same: Vec<&Route> = routes.iter().filter(|r| r.prefix == prefix).collect();
                if same.iter().any(|r| r.oif == Some(ifindex)) {
                    return Ok(());
                }
                let names = self.link_names();
                let existing = same
                    .first()
                    .map_or_else(|| prefix.to_string(), |r| describe(r, &names));
                Err(HostError::RouteExists { prefix, existing })
            }
            Err(e) => Err(HostError::netlink(
                format!("add route {prefix} via ifindex {ifindex}"),
                e,
            )),
        }
    }

    /// Removes the route for `prefix` through `ifindex`. A missing route
    /// (or a missing interface) is success.
    pub fn remove(&mut self, prefix: Ipv4Prefix, ifindex: u32) -> Result<(), HostError> {
        if self.added.get(&prefix) == Some(&ifindex) {
            self.added.remove(&prefix);
        }
        match self.nl.change_route(prefix, ifindex, false) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENODEV)) => Ok(()),
            Err(e) => Err(HostError::netlink(
                format!("delete route {prefix} via ifindex {ifindex}"),
                e,
            )),
        }
    }

    /// The prefixes this value added and has not removed, in order.
    pub fn installed(&self) -> Vec<Ipv4Prefix> {
        self.added.keys().copied().collect()
    }

    /// Removes every route this value added. Tries all of them and returns
    /// the first error, if any.
    pub fn remove_all(&mut self) -> Result<(), HostError> {
        let mut first_error = None;
        for (prefix, ifindex) in std::mem::take(&mut self.added) {
            if let Err(e) = self.remove(prefix, ifindex) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Routes in the main table that overlap `prefix` and do not go through
    /// `own_ifindex` (vine's own device, when it exists), described like
    /// `ip route` does ("10.42.0.0/16 dev eth0 proto kernel"). The default
    /// route is not a conflict: more specific overlay routes win over it by
    /// design.
    pub fn conflicts(
        &mut self,
        prefix: Ipv4Prefix,
        own_ifindex: Option<u32>,
    ) -> Result<Vec<String>, HostError> {
        let routes = self.dump()?;
        let names = self.link_names();
        Ok(routes
            .iter()
            .filter(|r| !r.prefix.is_default() && r.prefix.overlaps(&prefix))
            .filter(|r| own_ifindex.is_none() || r.oif != own_ifindex)
            .map(|r| describe(r, &names))
            .collect())
    }

    fn dump(&mut self) -> Result<Vec<Route>, HostError> {
        self.nl
            .main_routes()
            .map_err(|e| HostError::netlink("list the kernel's routes", e))
    }

    /// ifindex → name, best effort (descriptions fall back to the index).
    fn link_names(&mut self) -> BTreeMap<u32, String> {
        self.nl
            .links()
            .unwrap_or_default()
            .into_iter()
            .map(|l| (l.index, l.name))
            .collect()
    }
}

fn describe(r: &Route, names: &BTreeMap<u32, String>) -> String {
    let mut s = match r.kind {
        RouteType::Unicast => String::new(),
        other => format!("{} ", format!("{other:?}").to_lowercase()),
    };
    s.push_str(&r.prefix.to_string());
    if let Some(gw) = r.gateway {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(oif) = r.oif {
        match names.get(&oif) {
            Some(name) => s.push_str(&format!(" dev {name}")),
            None => s.push_str(&format!(" dev #{oif}")),
        }
    }
    let proto = match r.protocol {
        RouteProtocol::Kernel => Some("kernel".to_owned()),
        RouteProtocol::Boot => Some("boot".to_owned()),
        RouteProtocol::Static => Some("static".to_owned()),
        RouteProtocol::Dhcp => Some("dhcp".to_owned()),
        RouteProtocol::Unspec => None,
        other => Some(format!("{other:?}").to_lowercase()),
    };
    if let Some(p) = proto {
        s.push_str(&format!(" proto {p}"));
    }
    s
}
