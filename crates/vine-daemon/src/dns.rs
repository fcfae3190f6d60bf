//! The daemon's DNS server: authoritative for the overlay's names (see
//! `vine_core::names`), on the node's overlay address, port 53, UDP and
//! TCP. It answers only names under the zone's domain; anything else is
//! REFUSED (no open resolver, no forwarding).
//!
//! Bounded: a UDP answer never exceeds 512 bytes (truncated flag set
//! otherwise), at most [`MAX_TCP_CLIENTS`] TCP connections at once, each
//! closed after [`TCP_IDLE`] without a query; a query that does not parse
//! gets FORMERR when its header can be read and nothing otherwise.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::debug;
use vine_core::names::{Answer, Zone};

/// The DNS port.
pub const PORT: u16 = 53;
/// Most TCP clients served at once.
pub const MAX_TCP_CLIENTS: usize = 64;
/// A TCP client silent this long is disconnected.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// TTL of every answer: names follow attach and detach within seconds.
pub const TTL: u32 = 5;
/// Largest UDP answer (no EDNS).
const UDP_MAX: usize = 512;

/// The zone's domain (`<node>.vine`, `<workload>.<node>.vine`).
pub const DOMAIN: &str = "vine";

/// The zone from what the node knows: this node under `[node] name`, each
/// member under the name this node's allowlist gives it (a member without
/// one has no names), with the addresses they announced.
pub(crate) fn zone(config: &vine_core::config::Config, node: &vine_core::node::Node) -> Zone {
    let mut zone = Zone::new(DOMAIN);
    zone.add_node(&config.node.name, node.own_names());
    for (_, name, set) in node.member_names() {
        if let Some(name) = name {
            zone.add_node(&name, &set);
        }
    }
    zone
}

/// The running server's tasks (aborted on drop).
#[derive(Debug)]
pub(crate) struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds UDP and TCP on `address:53` and serves `zone`.
pub(crate) async fn spawn(
    address: Ipv4Addr,
    zone: watch::Receiver<Arc<Zone>>,
) -> io::Result<DnsServer> {
    let at = SocketAddrV4::new(address, PORT);
    let udp = UdpSocket::bind(at).await?;
    let tcp = TcpListener::bind(at).await?;
    let tasks = vec![
        tokio::spawn(serve_udp(udp, zone.clone())),
        tokio::spawn(serve_tcp(tcp, zone)),
    ];
    Ok(DnsServer { tasks })
}

async fn serve_udp(socket: UdpSocket, zone: watch::Receiver<Arc<Zone>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                debug!("dns udp: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let current = zone.borrow().clone();
        if let Some(reply) = answer(&current, &buf[..n], UDP_MAX) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: watch::Receiver<Arc<Zone>>) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CLIENTS));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%from, "dns tcp: too many clients, closing");
            continue;
        };
        let zone = zone.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = tcp_client(stream, from, zone).await {
                debug!(%from, "dns tcp: {e}");
            }
        });
    }
}

async fn tcp_client(
    mut stream: TcpStream,
    _from: SocketAddr,
    zone: watch::Receiver<Arc<Zone>>,
) -> io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let current = zone.borrow().clone();
        let Some(reply) = answer(&current, &query, usize::from(u16::MAX)) else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        out.extend_from_slice(&reply);
        stream.write_all(&out).await?;
    }
}

/// The reply to one query message, at most `max` bytes; `None` when the
/// bytes are not even a DNS header (or are a response).
pub fn answer(zone: &Zone, query: &[u8], max: usize) -> Option<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => {
            if query.len() < 12 || query[2] & 0x80 != 0 {
                return None;
            }
            let id = u16::from_be_bytes([query[0], query[1]]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
    };
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(false);
    if request.op_code() != OpCode::Query {
        reply.set_response_code(ResponseCode::NotImp);
        return reply.to_vec().ok();
    }
    let [q] = request.queries() else {
        reply.set_response_code(ResponseCode::FormErr);
        return reply.to_vec().ok();
    };
    reply.add_query(q.clone());
    let name = q.name().to_ascii();
    match zone.lookup(&name) {
        Answer::Refused => {
            reply.set_response_code(ResponseCode::Refused);
        }
        Answer::NxDomain => {
            reply.set_authoritative(true);
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Answer::NoData => {
            reply.set_authoritative(true);
        }
        Answer::A(address) => {
            reply.set_authoritative(true);
            if matches!(q.query_type(), RecordType::A | RecordType::ANY) {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::A(A(address)),
                ));
            }
        }
    }
    let bytes = reply.to_vec().ok()?;
    if bytes.len() <= max {
        return Some(bytes);
    }
    let mut truncated = reply;
    truncated.take_answers();
    truncated.set_truncated(true);
    truncated.to_vec().ok()
}

#[cfg(test)]
mod tests;
