//! `edge queue send|list|peek`: a running node's queues, through its admin endpoint
//! (announced in the data directory's `admin.json`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use edge_runtime::admin::{ADMIN_FILE, AdminInfo};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// Arguments of `edge queue`.
#[derive(Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    command: QueueCommand,
    /// The node's data directory: `edge serve --data-dir` (default ./.edge-data), or for
    /// `edge dev` the app's .edge folder.
    #[arg(long, default_value = ".edge-data", global = true)]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Send one message to a queue (durable when the command returns).
    Send {
        /// The queue.
        queue: String,
        /// The body.
        body: String,
        /// How the consumer decodes it: text, json or bytes.
        #[arg(long, default_value = "text")]
        content_type: String,
    },
    /// Every queue with its counts: ready, delayed, in flight.
    List,
    /// The first messages waiting in a queue, without taking them.
    Peek {
        /// The queue.
        queue: String,
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

/// Runs `edge queue`.
pub fn run(args: QueueArgs) -> anyhow::Result<ExitCode> {
    let admin_file = args.data_dir.join(ADMIN_FILE);
    let info = AdminInfo::read(&admin_file).with_context(|| {
        format!(
            "no running node announces itself in {} (queues are served by a running node: start one with `edge serve --data-dir {}`)",
            admin_file.display(),
            args.data_dir.display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot create an HTTP client")?;
        let base = format!("{}/v1/queues", info.url);
        let request = match &args.command {
            QueueCommand::Send {
                queue,
                body,
                content_type,
            } => client
                .post(format!("{base}/{}/messages", encode(queue)))
                .query(&[("content_type", content_type)])
                .body(body.clone()),
            QueueCommand::List => client.get(&base),
            QueueCommand::Peek { queue, limit } => client
                .get(format!("{base}/{}/messages", encode(queue)))
                .query(&[("limit", limit)]),
        };
        let res = request
            .bearer_auth(&info.token)
            .send()
            .await
            .with_context(|| format!("the node at {} does not answer", info.url))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{}", body["error"].as_str().unwrap_or("the node refused"));
        }
        #[allow(clippy::print_stdout, reason = "CLI output")]
        match args.command {
            QueueCommand::Send { queue, .. } => println!("sent to {queue}"),
            QueueCommand::List => {
                println!(
                    "{:<32} {:>10} {:>10} {:>10}",
                    "QUEUE", "READY", "DELAYED", "IN FLIGHT"
                );
                for q in body.as_array().into_iter().flatten() {
                    println!(
                        "{:<32} {:>10} {:>10} {:>10}",
                        q["queue"].as_str().unwrap_or(""),
                        q["ready"],
                        q["delayed"],
                        q["in_flight"]
                    );
                }
            }
            QueueCommand::Peek { .. } => println!("{}", serde_json::to_string_pretty(&body)?),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
