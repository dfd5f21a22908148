//! What the front door allows one client request, whatever the app.

/// The front door's bounds on a request, set by the node's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontDoorLimits {
    /// The largest request body accepted, in bytes. A request declaring a longer body is
    /// answered `413 payload-too-large` without reaching its app; a body sent without a length
    /// that grows past it fails to read in the script.
    pub max_request_body: u64,
}

impl FrontDoorLimits {
    /// Workers' own request body limit (its free and pro plans): 100 MiB.
    pub const DEFAULT_MAX_REQUEST_BODY: u64 = 100 << 20;
}

impl Default for FrontDoorLimits {
    fn default() -> Self {
        Self {
            max_request_body: Self::DEFAULT_MAX_REQUEST_BODY,
        }
    }
}
