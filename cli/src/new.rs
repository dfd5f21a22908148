//! `edge new NAME`: scaffold an app that runs as is.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

/// Arguments of `edge new`.
#[derive(Args)]
pub struct NewArgs {
    /// The app's name; also the folder created.
    name: String,
    /// Where to create the folder (default: the current directory).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

const HANDLER: &str = r#"// A Workers-style handler. Run it with `edge dev` in this folder.
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    return new Response(`Hello from ${env.APP_NAME} at ${url.pathname}\n`, {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  },
};
"#;

/// Runs `edge new`.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("{name:?} is not a valid app name: use 1 to 63 letters, digits, `-` or `_`");
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    std::fs::create_dir_all(root.join("src"))
        .with_context(|| format!("cannot create {}", root.display()))?;
    let config = format!(
        "name = \"{name}\"\nmain = \"src/index.js\"\ncompatibility_date = \"2026-11-01\"\n\n[vars]\nAPP_NAME = \"{name}\"\n"
    );
    std::fs::write(root.join("edge.toml"), config)?;
    std::fs::write(root.join("src/index.js"), HANDLER)?;
    // `edge dev` keeps local state (KV data) in .edge/: not something to commit.
    std::fs::write(root.join(".gitignore"), ".edge/\n")?;
    #[allow(clippy::print_stdout, reason = "CLI output")]
    {
        println!("created {}", root.display());
        println!("run it with: edge dev {}", root.display());
    }
    Ok(ExitCode::SUCCESS)
}
