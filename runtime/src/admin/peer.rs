//! Whether a connection to the admin endpoint comes from this very process: an app's own
//! outbound `fetch` (one the operator let reach loopback) must never reach the admin
//! endpoint, token or not. On Linux the kernel says which socket the peer is
//! (`/proc/net/tcp`, `tcp6`) and whether this process holds it (`/proc/self/fd`).

use std::net::SocketAddr;

/// Whether the TCP connection from `peer` to the admin listener at `local` was opened by this
/// process. `false` where that cannot be told (not Linux).
pub(super) fn from_this_process(peer: SocketAddr, local: SocketAddr) -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::holds(peer, local).unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, local);
        false
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::net::{IpAddr, SocketAddr};

    /// `ADDR:PORT` as `/proc/net/tcp*` writes it: the address in 32-bit words in host order,
    /// hex, then the port, hex.
    fn proc_format(addr: SocketAddr) -> String {
        let words: Vec<u8> = match addr.ip() {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let mut out = String::new();
        for chunk in words.chunks(4) {
            let word = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            out.push_str(&format!("{word:08X}"));
        }
        out.push_str(&format!(":{:04X}", addr.port()));
        out
    }

    /// The inode of the socket whose local end is `peer` and remote end `local`.
    fn peer_inode(peer: SocketAddr, local: SocketAddr) -> Option<String> {
        let table = match peer {
            SocketAddr::V4(_) => "/proc/net/tcp",
            SocketAddr::V6(_) => "/proc/net/tcp6",
        };
        let text = std::fs::read_to_string(table).ok()?;
        let (peer, local) = (proc_format(peer), proc_format(local));
        text.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&peer.as_str()) && fields.get(2) == Some(&local.as_str()))
                .then(|| fields.get(9).map(|s| s.to_string()))
                .flatten()
        })
    }

    pub(super) fn holds(peer: SocketAddr, local: SocketAddr) -> Option<bool> {
        let inode = peer_inode(peer, local)?;
        let wanted = format!("socket:[{inode}]");
        let fds = std::fs::read_dir("/proc/self/fd").ok()?;
        Some(fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
        }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_connection_of_this_process_is_recognised() {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let local = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(local).unwrap();
            let (_server, peer) = listener.accept().unwrap();
            assert_eq!(holds(peer, local), Some(true));
            drop(client);
            assert_eq!(proc_format("127.0.0.1:8080".parse().unwrap()).len(), 13);
        }
    }
}
