//! `edge dev [DIR]`: one app, every request goes to it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edge_runtime::edge_binding::NodeStore;
use edge_runtime::{Node, NodeOptions};

use crate::logging::{self, LogFormat};

/// Arguments of `edge dev`.
#[derive(Args)]
pub struct DevArgs {
    /// The app folder (holding edge.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Seconds an isolate with nothing to do stays warm.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Keep local state (KV data) here instead of the app's `.edge` folder.
    #[arg(long)]
    persist_to: Option<PathBuf>,
    /// Run the app's `scheduled` handler on a request to `/__scheduled?cron=EXPR`, as
    /// `wrangler dev --test-scheduled` does.
    #[arg(long)]
    test_scheduled: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
}

/// Runs `edge dev`.
pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format, logging::DEV_FILTER);
    let state_dir = args.persist_to.unwrap_or_else(|| args.dir.join(".edge"));
    let options = NodeOptions {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        limits: args.limits.node_limits(),
        front_door: args.limits.front_door(),
        // The developer runs their own app: it gets what its config asks.
        private_network: edge_runtime::AppGrant::AnyApp,
        enforce_limits: !args.limits.no_limits,
        expose_errors: true,
        test_scheduled: args.test_scheduled,
        bindings: crate::bindings::registry(
            NodeStore::Dir(state_dir.clone()),
            crate::bindings::Settings {
                kv_namespace_quota: args.limits.kv_namespace_quota(),
                queue_quota: args.limits.queue_quota(),
                ..Default::default()
            },
        )?,
        ..NodeOptions::default()
    };
    let node = Node::single(&args.dir, options)
        .with_context(|| format!("cannot start the app in {}", args.dir.display()))?;
    let addr = format!("{}:{}", args.host, args.port);
    // Ctrl-C lets a request in flight finish, briefly: a developer wants the prompt back.
    crate::serve::listen(node, &addr, &state_dir, DEV_GRACE)
}

/// How long `edge dev` lets requests in flight finish after Ctrl-C.
const DEV_GRACE: Duration = Duration::from_secs(5);
