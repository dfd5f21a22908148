//! Ops Deno's Node modules import that no extension edge carries provides: they belong to Deno's
//! runtime (workers, the HTTP server, DNS, N-API, SQLite, the CLI). A module importing an op
//! that does not exist fails to load, so each gets a stand-in that throws when called. None of
//! them is reachable from a module edge provides without reaching for the host.

use deno_error::JsErrorBox;

macro_rules! absent {
    ($($name:ident),* $(,)?) => {
        $(
            #[deno_core::op2(fast)]
            fn $name() -> Result<(), JsErrorBox> {
                Err(JsErrorBox::type_error(concat!(
                    "not supported on edge (",
                    stringify!($name),
                    " belongs to Deno's runtime)"
                )))
            }
        )*

        /// The stand-ins, one per absent op.
        pub(crate) fn ops() -> Vec<deno_core::OpDecl> {
            vec![$($name()),*]
        }
    };
}

absent!(
    op_bootstrap_color_depth,
    op_bootstrap_unstable_args,
    op_brotli_compress,
    op_brotli_compress_async,
    op_brotli_compress_stream,
    op_brotli_compress_stream_end,
    op_brotli_decompress,
    op_brotli_decompress_async,
    op_brotli_decompress_stream,
    op_brotli_decompress_stream_end,
    op_create_brotli_compress,
    op_create_brotli_decompress,
    op_create_worker,
    op_current_thread_cpu_usage,
    op_dns_resolve,
    op_host_get_worker_cpu_usage,
    op_host_post_message,
    op_host_post_message_raw,
    op_host_recv_ctrl,
    op_host_recv_message,
    op_host_recv_message_sync,
    op_host_terminate_worker,
    op_http_notify_serving,
    op_http_serve_address_override,
    op_napi_open,
    op_net_get_ips_from_perm_token,
    op_net_get_system_dns_servers,
    op_node_database_backup,
    op_node_worker_thread_post_message,
    op_node_worker_thread_recv_message,
    op_node_worker_thread_register,
    op_node_worker_thread_set_listener_count,
);
