//! The Queues limits every producer goes through (scripts, CLI, admin), with messages that
//! name the rule.

use crate::error::QueueError;

/// Most bytes in one message body.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Most messages in one `sendBatch`.
pub const MAX_BATCH_MESSAGES: usize = 100;
/// Most bytes (bodies) in one `sendBatch`.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Longest delay, in seconds (24 hours).
pub const MAX_DELAY_SECS: u32 = 24 * 60 * 60;
/// Most messages a consumer takes in one batch.
pub const MAX_BATCH_SIZE: u32 = 100;

/// A message body of `len` bytes.
pub fn check_message(len: usize) -> Result<(), QueueError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(QueueError::rule(format!(
            "message is {len} bytes; a message may be at most {MAX_MESSAGE_BYTES} bytes (128 KB)"
        )));
    }
    Ok(())
}

/// A batch of `count` messages with `bytes` of bodies.
pub fn check_batch(count: usize, bytes: usize) -> Result<(), QueueError> {
    if count > MAX_BATCH_MESSAGES {
        return Err(QueueError::rule(format!(
            "batch has {count} messages; a batch may have at most {MAX_BATCH_MESSAGES}"
        )));
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(QueueError::rule(format!(
            "batch is {bytes} bytes; a batch may be at most {MAX_BATCH_BYTES} bytes (256 KB)"
        )));
    }
    Ok(())
}

/// A `delaySeconds` value.
pub fn check_delay(delay: f64) -> Result<u32, QueueError> {
    if !delay.is_finite() || delay < 0.0 || delay > f64::from(MAX_DELAY_SECS) {
        return Err(QueueError::rule(format!(
            "delaySeconds is {delay}; it must be between 0 and {MAX_DELAY_SECS} (24 hours)"
        )));
    }
    Ok(delay as u32)
}
