//! The tee: raw StatsD bytes, unchanged, to the legacy daemon over UDP.
//!
//! UDP and Unix datagrams are forwarded as the same datagram, byte for byte, before parsing
//! (bad lines and oversized packets included: what the legacy path sees does not change when
//! the shim is inserted). TCP has no datagrams: complete lines are forwarded unchanged, packed
//! into datagrams of at most [`TCP_TEE_DATAGRAM`] bytes on line boundaries. Send errors are
//! counted (`dualmetrics.shim.tee.errors`), never retried.
use crate::error::BuildError;
use crate::telemetry::Telemetry;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

/// Largest datagram the tee builds from TCP lines.
pub const TCP_TEE_DATAGRAM: usize = 8192;

/// A UDP forwarder to one address.
#[derive(Debug)]
pub struct Tee {
    sock: UdpSocket,
    target: SocketAddr,
}

impl Tee {
    /// Resolves `target` and binds an ephemeral loopback (or unspecified, for non-loopback
    /// targets) UDP socket to send from.
    ///
    /// # Errors
    /// [`BuildError::Bind`] when the address does not resolve or the socket cannot be bound.
    pub fn new(target: &str) -> Result<Tee, BuildError> {
        let err = |source| BuildError::Bind { what: "tee", addr: target.to_owned(), source };
        let addr = target
            .to_socket_addrs()
            .map_err(err)?
            .next()
            .ok_or_else(|| err(std::io::Error::other("no address")))?;
        let local: SocketAddr = match (addr.is_ipv4(), addr.ip().is_loopback()) {
            (true, true) => "127.0.0.1:0".parse().expect("literal"),
            (true, false) => "0.0.0.0:0".parse().expect("literal"),
            (false, true) => "[::1]:0".parse().expect("literal"),
            (false, false) => "[::]:0".parse().expect("literal"),
        };
        let sock = UdpSocket::bind(local).map_err(err)?;
        Ok(Tee { sock, target: addr })
    }

    /// The legacy daemon's address.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Sends one datagram unchanged.
    pub fn forward(&self, datagram: &[u8], tel: &Telemetry) {
        let ok = self.sock.send_to(datagram, self.target).is_ok();
        tel.tee(ok);
    }

    /// Sends complete newline-terminated lines from a stream, packed on line boundaries.
    pub fn forward_lines(&self, lines: &[u8], tel: &Telemetry) {
        let mut rest = lines;
        while !rest.is_empty() {
            let mut cut = rest.len().min(TCP_TEE_DATAGRAM);
            if cut < rest.len() {
                // last newline inside the window; a single longer line goes out alone
                cut = match rest[..cut].iter().rposition(|b| *b == b'\n') {
                    Some(i) => i + 1,
                    None => rest.iter().position(|b| *b == b'\n').map_or(rest.len(), |i| i + 1),
                };
            }
            let chunk = &rest[..cut];
            let chunk = chunk.strip_suffix(b"\n").unwrap_or(chunk);
            if !chunk.is_empty() {
                self.forward(chunk, tel);
            }
            rest = &rest[cut..];
        }
    }
}
