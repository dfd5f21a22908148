//! `edge dev [DIR]`: one app, every request goes to it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use edge_runtime::edge_binding::NodeStore;
use edge_runtime::node::LocalVars;
use edge_runtime::{Node, NodeOptions};

use crate::logging::{self, LogFormat};

/// Arguments of `edge dev`.
#[derive(Args)]
pub struct DevArgs {
    /// The app folder (holding edge.toml, or wrangler.toml / wrangler.jsonc / wrangler.json).
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
    /// Set the variable KEY to VALUE (text) for the app, over its `[vars]`. Repeat for more.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// Run the environment NAME: the config's `[env.NAME]` section over its top level, as
    /// `wrangler dev --env NAME` (local secrets from `.dev.vars.NAME` if it exists).
    #[arg(long, short = 'e', value_name = "NAME")]
    env: Option<String>,
    /// Do not reload the app when its files change.
    #[arg(long)]
    no_watch: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: crate::limits::LimitArgs,
    #[command(flatten)]
    cf: crate::cf::CfArgs,
}

/// Runs `edge dev`.
pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log_format, logging::DEV_FILTER);
    let state_dir = args.persist_to.unwrap_or_else(|| args.dir.join(".edge"));
    let local_vars = LocalVars::new(
        secrets_candidates(&args.dir, args.env.as_deref()),
        Arc::new(read_secrets),
    );
    let (secrets_file, secrets) = local_secrets(&local_vars)?;
    let options = NodeOptions {
        idle_timeout: Duration::from_secs(args.idle_timeout),
        limits: args.limits.node_limits(),
        front_door: args.limits.front_door(),
        // The developer runs their own app: it gets what its config asks.
        private_network: edge_runtime::AppGrant::AnyApp,
        nodejs_compat: edge_runtime::AppGrant::AnyApp,
        enforce_limits: !args.limits.no_limits,
        expose_errors: true,
        test_scheduled: args.test_scheduled,
        bindings: crate::bindings::registry(
            NodeStore::Dir(state_dir.clone()),
            crate::bindings::Settings {
                kv_namespace_quota: args.limits.kv_namespace_quota(),
                queue_quota: args.limits.queue_quota(),
                cache: args.limits.cache_bounds(),
                ..Default::default()
            },
        )?,
        // `.dev.vars` (or `.env`) is read each time the app loads, under `--var` (which wins
        // over it, as it wins over `[vars]`): an edited file is served without a restart.
        local_vars: Some(local_vars),
        vars: args.vars,
        env: args.env,
        cf: args.cf.config()?,
        ..NodeOptions::default()
    };
    let node = Node::single(&args.dir, options)
        .with_context(|| format!("cannot start the app in {}", args.dir.display()))?;
    let addr = format!("{}:{}", args.host, args.port);
    let secret_names: Vec<&str> = secrets.iter().map(|(k, _)| k.as_str()).collect();
    let banner = banner(
        &node,
        &state_dir,
        !args.no_watch,
        secrets_file
            .as_deref()
            .map(|file| (file, &secret_names[..])),
    );
    crate::serve::listen(
        node,
        crate::serve::Listen {
            addr: &addr,
            data_dir: &state_dir,
            // Ctrl-C lets a request in flight finish, briefly: a developer wants the prompt
            // back.
            grace: DEV_GRACE,
            watch: !args.no_watch,
            banner,
            admin: Default::default(),
            tls: None,
        },
    )
}

/// Variables as `KEY`, `VALUE` pairs, in the order given.
type Vars = Vec<(String, String)>;

/// Where `edge dev` looks for local secrets, in order: `.dev.vars.<env>` (with `--env`),
/// `.dev.vars`, `.env`; the first that exists is used (as wrangler), in dotenv format, as text
/// variables over the config's `[vars]`.
fn secrets_candidates(dir: &Path, env: Option<&str>) -> Vec<PathBuf> {
    env.map(|env| format!(".dev.vars.{env}"))
        .into_iter()
        .chain([".dev.vars".to_owned(), ".env".to_owned()])
        .map(|name| dir.join(name))
        .collect()
}

/// The `KEY=VALUE` lines of a secrets file; an error says which line is wrong, never what it
/// holds (it may be a secret).
fn read_secrets(file: &Path) -> Result<Vars, String> {
    dotenvy::from_path_iter(file)
        .and_then(|lines| lines.collect::<Result<Vec<_>, _>>())
        .map_err(|e| match e {
            dotenvy::Error::LineParse(text, _) => {
                let line = std::fs::read_to_string(file)
                    .ok()
                    .and_then(|all| all.lines().position(|l| l.contains(text.as_str())))
                    .map_or_else(String::new, |i| format!("line {} ", i + 1));
                format!("{line}is not KEY=VALUE (quote a value that has spaces)")
            }
            dotenvy::Error::Io(e) => e.to_string(),
            _ => "cannot be read".into(),
        })
}

/// The local secrets file in use at start and what it holds (for the banner; a file that does
/// not parse stops `edge dev` before it starts).
fn local_secrets(local: &LocalVars) -> anyhow::Result<(Option<PathBuf>, Vars)> {
    let Some(file) = local.file() else {
        return Ok((None, Vec::new()));
    };
    let vars = read_secrets(file).map_err(|what| anyhow::anyhow!("{}: {what}", file.display()))?;
    Ok((Some(file.to_path_buf()), vars))
}

/// `KEY=VALUE` of `--var`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// What `edge dev` prints before its `listening on` line: the app, its bindings and vars,
/// where its local state lives, and whether it reloads on change.
fn banner(node: &Node, state_dir: &Path, watch: bool, secrets: Option<(&Path, &[&str])>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(tenant) = node.tenants().into_iter().next() else {
        return out;
    };
    let app = tenant.app();
    let _ = writeln!(out, "edge dev: {} ({})", app.name, app.file.display());
    let _ = writeln!(out, "  main        {}", app.main.display());
    for binding in &app.bindings {
        let resource = binding
            .claim
            .as_ref()
            .map(|c| format!(" {:?}", c.resource))
            .unwrap_or_default();
        match &binding.name {
            Some(name) => {
                let name = format!("env.{name}");
                let _ = writeln!(out, "  {name:<11} {}{resource}", binding.kind);
            }
            // Not on `env` (a cron trigger): where the config declares it.
            None => {
                let _ = writeln!(out, "  {:<11} {}{resource}", binding.kind, binding.name_key);
            }
        }
    }
    let (secrets_file, secret_names) = secrets.unwrap_or((Path::new(""), &[]));
    let keys: Vec<&str> = app
        .vars
        .keys()
        .map(String::as_str)
        .filter(|k| !secret_names.contains(k))
        .collect();
    if !keys.is_empty() {
        let _ = writeln!(out, "  vars        {}", keys.join(", "));
    }
    if !secret_names.is_empty() {
        // Names only: a secret's value is never printed or logged.
        let _ = writeln!(
            out,
            "  secrets     {} (from {})",
            secret_names.join(", "),
            secrets_file.display()
        );
    }
    let mut files: Vec<String> = std::fs::read_dir(state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".redb"))
        .collect();
    files.sort();
    if !files.is_empty() {
        let _ = writeln!(
            out,
            "  local data  {} ({}), kept between runs",
            state_dir.display(),
            files.join(", ")
        );
    }
    if watch {
        let _ = writeln!(
            out,
            "  reloads     when files in {} change; Ctrl-C to stop",
            app.root.display()
        );
    }
    out
}

/// How long `edge dev` lets requests in flight finish after Ctrl-C.
const DEV_GRACE: Duration = Duration::from_secs(5);
