//! The suite's command line.

use std::path::PathBuf;

/// What `--help` and a bad argument print.
pub const USAGE: &str = "\
usage: cargo bench -p edge-cli --bench suite -- [--quick] [--v8-only] [--only SCENARIO[,...]] [--out FILE] [--readme]
       cargo bench -p edge-cli --bench suite -- --readme-from FILE.json

  --quick              fewer rounds, shorter runs, fewer apps (about five minutes)
  --v8-only            measure edge on V8 only, not also on QuickJS (no second build)
  --only LIST          run only these scenarios: hello, json, cold_start, density, cpu, kv,
                       queues, wasm, reload, project
  --out FILE           also write the JSON report to FILE
  --readme             rewrite README.md's Performance table from this run
  --readme-from FILE   rewrite README.md's Performance table from a saved report; run nothing";

/// The parsed command line.
#[derive(Debug, Default)]
pub struct Options {
    /// `--quick`: the short variant of every scenario.
    pub quick: bool,
    /// `--v8-only`: measure only the default (V8) build of edge.
    pub v8_only: bool,
    /// `--only`: the scenarios to run; empty means all.
    pub only: Vec<String>,
    /// `--out`: an extra path for the JSON report.
    pub out: Option<PathBuf>,
    /// `--readme`: rewrite README.md's table after the run.
    pub readme: bool,
    /// `--readme-from`: rewrite README.md's table from this report and run nothing.
    pub readme_from: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after the program name. `cargo bench` adds `--bench`, which is
    /// accepted and ignored.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => {}
                "--quick" => options.quick = true,
                "--v8-only" => options.v8_only = true,
                "--readme" => options.readme = true,
                "--only" => {
                    let list = value("--only")?;
                    options
                        .only
                        .extend(list.split(',').map(|s| s.trim().to_string()));
                }
                "--out" => options.out = Some(value("--out")?.into()),
                "--readme-from" => options.readme_from = Some(value("--readme-from")?.into()),
                "--help" | "-h" => return Err("benchmark suite".into()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let known: Vec<&str> = crate::SCENARIOS
            .iter()
            .map(|(name, _)| *name)
            .chain(crate::NOT_RUN.iter().map(|(name, _)| *name))
            .collect();
        if let Some(bad) = options.only.iter().find(|s| !known.contains(&s.as_str())) {
            return Err(format!(
                "unknown scenario `{bad}` (known: {})",
                known.join(", ")
            ));
        }
        Ok(options)
    }

    /// Whether the scenario `name` is to run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == name)
    }
}
