//! `edge`: run Workers-style JavaScript apps, locally (`edge dev`) or on a node (`edge serve`).

mod bindings;
mod cf;
mod check;
mod dev;
mod kv;
mod limits;
mod log_line;
mod logging;
mod new;
mod queue;
mod serve;
mod trigger;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run Workers-style JavaScript apps: `export default { fetch(request, env, ctx) { … } }`.
#[derive(Parser)]
#[command(name = "edge", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one app on your machine while you write it.
    Dev(dev::DevArgs),
    /// Serve every app in a directory, routed by host and path (an edge node).
    Serve(serve::ServeArgs),
    /// Create a new app folder with an edge.toml and a handler that works.
    New(new::NewArgs),
    /// Load an app's config and script and report any error (exit code 1 on error).
    Check(check::CheckArgs),
    /// Read and write KV namespaces of a node's data directory (running or stopped).
    Kv(kv::KvArgs),
    /// Send to, list and peek at a running node's queues.
    Queue(queue::QueueArgs),
    /// Run a trigger of an app on a running node now (`edge trigger cron APP`).
    Trigger(trigger::TriggerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any HTTP client is made (the CLI's commands talk to a node's admin endpoint).
    edge_runtime::install_tls_provider();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Serve(args) => serve::run(args),
        Command::New(args) => new::run(args),
        Command::Check(args) => check::run(args),
        Command::Kv(args) => kv::run(args),
        Command::Queue(args) => queue::run(args),
        Command::Trigger(args) => trigger::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
