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
}

/// Runs `edge check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    // Bindings in memory: the app's top level may use them, and nothing is written.
    let options = NodeOptions {
        bindings: crate::bindings::registry(NodeStore::Memory, Default::default())?,
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
