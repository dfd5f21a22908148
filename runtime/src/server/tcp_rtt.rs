//! The kernel's estimate of a TCP connection's round-trip time (`TCP_INFO`), for
//! `request.cf.clientTcpRtt`. Read once, when the connection is accepted (after the handshake
//! the kernel has one sample: the SYN/ACK's).
#![allow(
    unsafe_code,
    reason = "getsockopt(TCP_INFO) has no safe wrapper in the crates edge uses; the one call is documented below"
)]

/// The smoothed RTT of `socket`'s connection in milliseconds (rounded), if the platform says.
#[cfg(target_os = "linux")]
pub(crate) fn rtt_ms(socket: &impl std::os::fd::AsRawFd) -> Option<u32> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is open for the duration of the call (borrowed); `info` and `len`
    // are valid out-pointers of the size given.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| info.tcpi_rtt.div_ceil(1000))
}

/// Not measured on this platform.
#[cfg(not(target_os = "linux"))]
pub(crate) fn rtt_ms<S>(_socket: &S) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_loopback_connection_has_a_small_rtt() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let rtt = super::rtt_ms(&server);
        #[cfg(target_os = "linux")]
        assert!(rtt.is_some_and(|ms| ms < 1000), "{rtt:?}");
        drop(client);
    }
}
