//! `edge check [DIR]`: load an app's config and script, report errors, exit non-zero on error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use edge_runtime::edge_binding::NodeStore;
use edge_runtime::{Node, NodeOptions};

/// Arguments of `edge check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The app folder (holding edge.toml, or wrangler.toml / wrangler.jsonc / wrangler.json).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Check the environment NAME (the config's `[env.NAME]` section over its top level).
    #[arg(long, short = 'e', value_name = "NAME")]
    env: Option<String>,
}

/// Runs `edge check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // Bindings in memory: the app's top level may use them, and nothing is written.
    let options = NodeOptions {
        bindings: crate::bindings::registry(NodeStore::Memory, Default::default())?,
        env: args.env,
        // The app's own code, checked as `edge dev` would run it.
        nodejs_compat: edge_runtime::AppGrant::AnyApp,
        ..NodeOptions::default()
    };
    let node = match Node::single(&args.dir, options) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let tenant = &node.tenants()[0];
    for warning in &tenant.app().warnings {
        eprintln!("warning: {warning}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(tenant.load()) {
        Ok(()) => {
            for warning in untriggered(tenant) {
                eprintln!("warning: {warning}");
            }
            #[allow(clippy::print_stdout, reason = "CLI output")]
            {
                println!("ok: {} ({})", tenant.name(), tenant.app().main.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", tenant.name());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The handlers the app exports that nothing in its config can run, each as a warning that says
/// what would.
fn untriggered(tenant: &edge_runtime::tenant::Tenant) -> Vec<String> {
    let app = tenant.app();
    let handlers = tenant.counters().handlers();
    let has = |name: &str| handlers.iter().any(|h| h == name);
    let mut warnings = Vec::new();
    if has("scheduled") && !app.bindings.iter().any(|b| b.kind == "cron") {
        warnings.push(format!(
            "{}: the app exports a scheduled() handler but no cron triggers it: add [triggers] crons = [\"*/5 * * * *\"] (edge dev --test-scheduled runs it on /__scheduled)",
            app.file.display()
        ));
    }
    if has("queue")
        && !app
            .bindings
            .iter()
            .any(|b| b.kind == "queue" && b.name_key.starts_with("queues.consumers"))
    {
        warnings.push(format!(
            "{}: the app exports a queue() handler but consumes no queue: add [[queues.consumers]] with queue = \"NAME\"",
            app.file.display()
        ));
    }
    warnings
}
