//! `edge kv list|get|put|delete`: a node's KV data from the command line, whether the node is
//! stopped (the redb file is opened directly) or running (through its admin endpoint).

mod target;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use target::{PutArgs, Target};

/// Arguments of `edge kv`.
#[derive(Args)]
pub struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
}

/// Which namespace of which data directory.
#[derive(Args)]
struct Where {
    /// The namespace id (the `id` of a `[[kv_namespaces]]` entry).
    #[arg(long, short = 'n')]
    namespace: String,
    /// The node's data directory: `edge serve --data-dir` (default ./.edge-data), or for
    /// `edge dev` the app's `.edge` folder (or its `--persist-to`).
    #[arg(long, default_value = ".edge-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum KvCommand {
    /// Print the keys (all pages) as a JSON array of {name, expiration?, metadata?}.
    List {
        #[command(flatten)]
        at: Where,
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Write a key's value to stdout (exit code 1 if the key does not exist).
    Get {
        #[command(flatten)]
        at: Where,
        /// The key.
        key: String,
    },
    /// Store a value: given on the command line, read from --path, or read from stdin.
    Put {
        #[command(flatten)]
        at: Where,
        /// The key.
        key: String,
        /// The value; omit it (or give -) to read stdin.
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, conflicts_with = "value")]
        path: Option<PathBuf>,
        /// Expire after this many seconds (at least 60).
        #[arg(long)]
        ttl: Option<u64>,
        /// Expire at this time, in seconds since the Unix epoch.
        #[arg(long)]
        expiration: Option<u64>,
        /// Metadata to store with the value, as JSON.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Remove a key.
    Delete {
        #[command(flatten)]
        at: Where,
        /// The key.
        key: String,
    },
}

/// Runs `edge kv`.
pub fn run(args: KvArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args.command))
}

async fn run_async(command: KvCommand) -> anyhow::Result<ExitCode> {
    match command {
        KvCommand::List { at, prefix } => {
            let target = Target::open(&at.data_dir, &at.namespace, false).await?;
            let keys = target.list_all(prefix).await?;
            print(&serde_json::to_vec_pretty(&keys)?)?;
            print(b"\n")?;
        }
        KvCommand::Get { at, key } => {
            let target = Target::open(&at.data_dir, &at.namespace, false).await?;
            match target.get(&key).await? {
                Some(value) => print(&value)?,
                None => {
                    eprintln!("error: no key {key:?} in namespace {:?}", at.namespace);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        KvCommand::Put {
            at,
            key,
            value,
            path,
            ttl,
            expiration,
            metadata,
        } => {
            if let Some(meta) = &metadata {
                serde_json::from_str::<serde_json::Value>(meta)
                    .context("--metadata is not valid JSON")?;
            }
            let value = match (value, path) {
                (_, Some(path)) => std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (Some(v), None) if v != "-" => v.into_bytes(),
                _ => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .context("cannot read the value from stdin")?;
                    buf
                }
            };
            let target = Target::open(&at.data_dir, &at.namespace, true).await?;
            let args = PutArgs {
                ttl,
                expiration,
                metadata,
            };
            target.put(&key, value, args).await?;
        }
        KvCommand::Delete { at, key } => {
            let target = Target::open(&at.data_dir, &at.namespace, false).await?;
            target.delete(&key).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(
    clippy::print_stdout,
    reason = "printing values is this command's output"
)]
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}
