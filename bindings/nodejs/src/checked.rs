//! Edge's own versions of `deno_node` ops that panic on arguments a script controls. A panic in
//! an op cannot unwind through the engine, so it aborts the whole process: these answer a
//! `RangeError` instead. Each has the signature of the op it replaces (`ops::confine` swaps the
//! implementation in, keeping the name the modules import).

use deno_core::op2;
use deno_error::JsErrorBox;

/// `Buffer.prototype.compare` with offsets. deno_node's panics when a start is past its end,
/// and slices past the buffer when the script lies about a buffer's `length`.
#[op2(fast)]
#[smi]
pub(crate) fn op_edge_buffer_compare_offset(
    #[buffer] source: &[u8],
    #[buffer] target: &[u8],
    #[smi] source_start: usize,
    #[smi] target_start: usize,
    #[smi] source_end: usize,
    #[smi] target_end: usize,
) -> Result<i32, JsErrorBox> {
    let range =
        |name: &str| JsErrorBox::range_error(format!("The value of \"{name}\" is out of range."));
    if source_start > source_end || source_end > source.len() {
        return Err(range("sourceEnd"));
    }
    if target_start > target_end || target_end > target.len() {
        return Err(range("targetEnd"));
    }
    Ok(source[source_start..source_end].cmp(&target[target_start..target_end]) as i32)
}
