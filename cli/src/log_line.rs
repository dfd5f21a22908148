//! The human-readable log line: tracing-subscriber's compact line (time, level, target, the
//! event's fields, then the fields of the spans it happened in), but a field is printed once:
//! a span field the event (or an inner span) already has is left out. An isolate's span and a
//! console line both carry `tenant`, which the compact format printed twice.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The line format of `--log-format pretty`.
pub struct PrettyLine {
    /// Colour codes around the level and the dimmed parts.
    pub ansi: bool,
}

impl<S, N> FormatEvent<S, N> for PrettyLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let (dim, undim) = if self.ansi {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        };
        write!(writer, "{dim}")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "{undim} ")?;
        let level = meta.level();
        if self.ansi {
            let colour = match *level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                tracing::Level::DEBUG => "34",
                tracing::Level::TRACE => "35",
            };
            write!(writer, "\x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(writer, "{level:>5} ")?;
        }
        write!(writer, "{dim}{}:{undim} ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;

        let mut printed: Vec<&str> = meta.fields().iter().map(|f| f.name()).collect();
        let spans: Vec<_> = ctx
            .event_scope()
            .into_iter()
            .flat_map(|scope| scope.from_root())
            .collect();
        // Innermost first, so the field nearest the event is the one kept.
        for span in spans.iter().rev() {
            let names: Vec<&'static str> =
                span.metadata().fields().iter().map(|f| f.name()).collect();
            let exts = span.extensions();
            let Some(fields) = exts.get::<FormattedFields<N>>() else {
                continue;
            };
            for (name, text) in split_fields(&fields.fields, &names) {
                if printed.contains(&name) {
                    continue;
                }
                printed.push(name);
                write!(writer, " {dim}{text}{undim}")?;
            }
        }
        writeln!(writer)
    }
}

/// `formatted` (a span's fields as `a=1 b="x y"`) split into its fields, each with its name;
/// a field starts at a space followed by one of `names` and `=`.
fn split_fields<'t>(formatted: &'t str, names: &[&'static str]) -> Vec<(&'static str, &'t str)> {
    let starts_field = |at: &str| {
        names
            .iter()
            .find(|n| {
                at.strip_prefix(**n)
                    .is_some_and(|rest| rest.starts_with('='))
            })
            .copied()
    };
    let mut out: Vec<(&'static str, &'t str)> = Vec::new();
    let mut start = 0;
    let mut current = starts_field(formatted);
    for (i, _) in formatted.match_indices(' ') {
        if let Some(next) = starts_field(&formatted[i + 1..]) {
            if let Some(name) = current {
                out.push((name, formatted[start..i].trim()));
            }
            start = i + 1;
            current = Some(next);
        }
    }
    if let Some(name) = current
        && !formatted[start..].trim().is_empty()
    {
        out.push((name, formatted[start..].trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_fields_split_at_their_names() {
        let names = ["tenant", "isolate", "path"];
        assert_eq!(
            split_fields("tenant=a isolate=3 path=\"/x y=1\"", &names),
            [
                ("tenant", "tenant=a"),
                ("isolate", "isolate=3"),
                ("path", "path=\"/x y=1\"")
            ]
        );
        assert!(split_fields("", &names).is_empty());
    }
}
