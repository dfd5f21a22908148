//! Which of the Node extensions' ops keep their implementation.
//!
//! An allow-list, so an op added by a later `deno_node` is disabled until someone reads it:
//! the ops kept compute on their arguments and nothing else. A disabled op throws when called
//! (deno_core's `op_disabled_fn`); the modules that would call one are refused before that
//! ([`crate::builtins`]), so this is the second wall, not the first.

use deno_core::Extension;

/// `deno_node` ops that only compute: buffers and encodings, IDNA, CRC, address parsing for
/// `BlockList`, error-name tables, the async id counter, and what `util.inspect` and
/// `util.types` ask of the engine.
const NODE_OPS: &[&str] = &[
    "op_socket_address_parse",
    "op_socket_address_get_serialization",
    "op_blocklist_new",
    "op_blocklist_add_address",
    "op_blocklist_add_range",
    "op_blocklist_add_subnet",
    "op_blocklist_check",
    "op_mark_as_untransferable",
    "op_is_ascii",
    "op_is_utf8",
    "op_transcode",
    "op_node_buffer_compare",
    "op_node_buffer_compare_offset",
    "op_node_encoding_slice",
    "op_node_fs_constants",
    "op_node_sys_to_uv_error",
    "op_node_idna_to_ascii",
    "op_node_idna_domain_to_ascii",
    "op_node_idna_domain_to_unicode",
    "op_node_idna_punycode_to_ascii",
    "op_node_idna_punycode_to_unicode",
    "op_node_idna_punycode_decode",
    "op_node_idna_punycode_encode",
    "op_zlib_crc32",
    "op_zlib_crc32_string",
    "op_node_new_async_id",
    "op_node_view_has_buffer",
    "op_node_get_own_non_index_properties",
    "op_node_parse_env",
    // The build's target OS, a constant.
    "op_node_build_os",
];

/// `deno_node` classes kept whole: the compressors behind `node:zlib`, the async-id base
/// class and the histogram (computing only). The others (TCP, pipes, TLS, TTY, HTTP/2 over a
/// handle, WASI, the event-loop-delay timer) stay defined, since Deno's binding table declares
/// subclasses of them when it loads, but cannot be constructed and have no methods.
const NODE_CLASSES: &[&str] = &[
    "Zlib",
    "BrotliEncoder",
    "BrotliDecoder",
    "ZstdCompress",
    "ZstdDecompress",
    "AsyncWrap",
    "BaseHistogram",
];

/// Disables what `ext` could do to the host. `deno_node_crypto` is kept whole (hashes, ciphers,
/// keys, KDFs: computing only); `deno_io`, `deno_fs` and `deno_os` keep no op at all, and
/// `deno_io` loses its replacement of the engine's print op (it writes to the process's stdout).
pub(crate) fn confine(ext: &mut Extension) {
    match ext.name {
        "deno_node_crypto" | "edge_nodejs" => {}
        "deno_node" => {
            disable(ext, |name| NODE_OPS.contains(&name));
            for class in ext.objects.to_mut() {
                if !NODE_CLASSES.contains(&class.name.0) {
                    class.constructor = class.constructor.map(|c| c.disable());
                    class.methods = &[];
                    class.static_methods = &[];
                }
            }
        }
        _ => {
            disable(ext, |_| false);
            ext.objects = Default::default();
            ext.middleware_fn = None;
        }
    }
}

fn disable(ext: &mut Extension, keep: impl Fn(&str) -> bool) {
    for op in ext.ops.to_mut() {
        if !keep(op.name) {
            *op = op.disable();
        } else if op.name == "op_node_buffer_compare_offset" {
            // Kept, with edge's checked implementation (it panicked on a lying `length`).
            *op = op.with_implementation_from(&crate::checked::op_edge_buffer_compare_offset());
        }
    }
}
