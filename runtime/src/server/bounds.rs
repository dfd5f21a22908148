//! What the front door allows one client, whatever the app: request body size, how long a
//! client may take to send a request head or sit idle, and how many connections it may hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The front door's bounds, set by the node's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontDoorLimits {
    /// How long a client may take to send a whole request head; then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may sit idle between requests; then it is closed.
    pub keep_alive_idle: Duration,
    /// How long a write to a client may make no progress (the client takes no bytes); then
    /// the connection is closed and what it held freed.
    pub send_timeout: Duration,
    /// Open client connections the node holds at most (lowered at start to three quarters of
    /// the process's open-file limit). Past it a new connection is answered `503` and closed.
    pub max_connections: usize,
    /// Open connections one client IP address may hold at most; past it, as above.
    pub max_connections_per_ip: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_h2_streams: u32,
    /// Requests the node serves at once, over all its apps (each app also has its own bound,
    /// `limits.concurrent_requests`); past it requests wait in a line as long, then get `503
    /// overloaded`.
    pub max_requests: usize,
    /// How long a request past a bound waits for a slot before it is answered `503
    /// overloaded`.
    pub request_wait: Duration,
}

impl Default for FrontDoorLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_idle: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_connections_per_ip: 512,
            max_h2_streams: 64,
            max_requests: 10_000,
            request_wait: Duration::from_secs(1),
        }
    }
}

/// Counts open connections against [`FrontDoorLimits::max_connections`] and
/// [`FrontDoorLimits::max_connections_per_ip`].
pub(crate) struct Admission {
    max_total: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; it stops counting when dropped.
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(limits: &FrontDoorLimits) -> Arc<Self> {
        let max_total = match open_file_limit() {
            Some(files) => limits.max_connections.min(files * 3 / 4),
            None => limits.max_connections,
        };
        Arc::new(Self {
            max_total: max_total.max(1),
            max_per_ip: limits.max_connections_per_ip.max(1),
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// The most connections the node holds.
    pub(crate) fn max_total(&self) -> usize {
        self.max_total
    }

    /// Admits a connection from `ip`, or says which cap it would pass.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *open;
        if *total >= self.max_total {
            return Err("the node holds as many connections as it accepts");
        }
        let mine = per_ip.entry(ip).or_default();
        if *mine >= self.max_per_ip {
            return Err(
                "this client holds as many connections as the node accepts from one address",
            );
        }
        *mine += 1;
        *total += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (total, per_ip) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// The process's soft limit on open files.
fn open_file_limit() -> Option<usize> {
    #[allow(unsafe_code, reason = "getrlimit has no std wrapper")]
    // SAFETY: `limit` is a valid out-pointer for getrlimit.
    let limit = unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0).then_some(limit)
    }?;
    usize::try_from(limit.rlim_cur).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_node_and_per_address() {
        let admission = Admission::new(&FrontDoorLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Default::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a).unwrap();
        let _a2 = admission.admit(a).unwrap();
        assert!(admission.admit(a).is_err(), "per address");
        let _b1 = admission.admit(b).unwrap();
        assert!(admission.admit(b).is_err(), "per node");
        drop(a1);
        assert!(
            admission.admit(a).is_ok(),
            "a closed connection stops counting"
        );
    }
}
