//! `edge trigger cron APP [--cron EXPR]`: run an app's `scheduled` handler now on a running
//! node, through its admin endpoint (announced in the data directory's `admin.json`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use edge_runtime::admin::{ADMIN_FILE, AdminInfo};

/// Arguments of `edge trigger`.
#[derive(Args)]
pub struct TriggerArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Run an app's `scheduled` handler now, as its cron trigger would.
    Cron {
        /// The app's name.
        app: String,
        /// The expression `controller.cron` gets (default: the app's first in `[triggers]`).
        #[arg(long)]
        cron: Option<String>,
        /// The node's data directory: `edge serve --data-dir` (default ./.edge-data), or for
        /// `edge dev` the app's .edge folder.
        #[arg(long, default_value = ".edge-data")]
        data_dir: PathBuf,
    },
}

/// Runs `edge trigger`.
pub fn run(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let What::Cron {
        app,
        cron,
        data_dir,
    } = args.what;
    let admin_file = data_dir.join(ADMIN_FILE);
    let info = AdminInfo::read(&admin_file).with_context(|| {
        format!(
            "no running node announces itself in {} (start one with `edge serve --data-dir {}`)",
            admin_file.display(),
            data_dir.display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot create an HTTP client")?;
        let mut query = vec![("app", app.clone())];
        query.extend(cron.map(|c| ("cron", c)));
        let res = client
            .post(format!("{}/v1/cron/trigger", info.url))
            .bearer_auth(&info.token)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("the node at {} does not answer", info.url))?;
        let ok = res.status().is_success();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        #[allow(clippy::print_stdout, reason = "CLI output")]
        if ok {
            println!(
                "ran the scheduled handler of {app} (cron {:?})",
                body["cron"].as_str().unwrap_or("")
            );
            Ok(ExitCode::SUCCESS)
        } else {
            let code = body["code"].as_str().unwrap_or("error");
            let message = body["error"].as_str().unwrap_or("the node refused");
            eprintln!("error: {app}: {code}: {message}");
            Ok(ExitCode::FAILURE)
        }
    })
}
