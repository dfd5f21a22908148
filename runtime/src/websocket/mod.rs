//! WebSockets, apart from any engine: the opening handshake ([`handshake`]) and a socket that
//! reads whole messages and writes frames over an upgraded connection ([`socket`]).
//!
//! A Worker answers a request that asks for an upgrade with `new Response(null, { status: 101,
//! webSocket: client })`; the front door then hands the connection's bytes over (hyper's
//! upgrade) and the isolate's ops ([`crate::isolate`]) drive the socket on the isolate's
//! thread. Frames are fastwebsockets' (what Deno uses); the handshake, message assembly, size
//! bounds, keep-alive pings and closing are here.

pub mod connect;
pub mod handshake;
pub mod socket;

pub use fastwebsockets::Role;

pub use handshake::{Upgrade, accept_for, upgrade_request};
pub use socket::{Received, SendError, Socket};

/// The largest message either side may send, as Workers allows: 32 MiB. A peer that sends a
/// longer one is closed with `1009`; a script that sends one gets an error.
pub const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// The longest close reason, in UTF-8 bytes: a close frame's payload is at most 125 bytes,
/// two of which are the code.
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Whether a script may close a WebSocket with `code`: 1000, or 1001 to 4999 save the codes
/// that only describe what happened and are never sent (1004, 1005, 1006, 1015), as workerd
/// checks.
pub fn is_sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=4999) && !matches!(code, 1004 | 1005 | 1006 | 1015)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_a_script_may_send() {
        for ok in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999] {
            assert!(is_sendable_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 5000, 65535] {
            assert!(!is_sendable_close_code(bad), "{bad}");
        }
    }
}
