//! Log output: `EDGE_LOG` sets the filter (tracing's env-filter syntax); without it, each
//! command has its own default.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `edge dev`'s filter: everything at info, including a line per request.
pub const DEV_FILTER: &str = "info";

/// `edge serve`'s filter: info, without the line per request (`edge::access`), which costs
/// about a fifth of a hello-world request's CPU. `EDGE_LOG=info` turns it back on.
pub const SERVE_FILTER: &str = "info,edge::access=off";

/// Installs the global subscriber; `EDGE_LOG`, when set, replaces `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("EDGE_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colour only for a person at a terminal: log files and collectors get plain text (and
    // `NO_COLOR` turns it off there too).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder
            .event_format(crate::log_line::PrettyLine { ansi })
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
