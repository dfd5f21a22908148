//! README.md's Performance table, regenerated from a report between the
//! `<!-- bench:begin -->` and `<!-- bench:end -->` markers.

use std::path::Path;

use serde_json::Value;

use crate::{table, targets};

/// The line before the generated block.
const BEGIN: &str = "<!-- bench:begin -->";
/// The line after the generated block.
const END: &str = "<!-- bench:end -->";

/// Replaces what lies between the markers in `readme` with the table for `report`. Panics if
/// the markers are missing.
pub fn rewrite(readme: &Path, report: &Value) {
    let text = std::fs::read_to_string(readme)
        .unwrap_or_else(|e| panic!("read {}: {e}", readme.display()));
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{} has no {BEGIN} … {END} markers", readme.display());
    };
    assert!(
        begin < end,
        "{BEGIN} comes after {END} in {}",
        readme.display()
    );
    let new = format!(
        "{}{BEGIN}\n{}{}",
        &text[..begin],
        block(report),
        &text[end..]
    );
    std::fs::write(readme, new).unwrap_or_else(|e| panic!("write {}: {e}", readme.display()));
}

/// The generated Markdown: when and where it was measured, the table, the notes, the targets.
pub fn block(report: &Value) -> String {
    let m = &report["machine"];
    let s = &report["settings"];
    let v = &report["versions"];
    let text = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| x.to_string())
    };
    let date = text(&report["date"]);
    let intro = format!(
        "Measured {} ({} suite) on {}, {} cores, {} GiB, Linux {}; deno {}, workerd {}, plain \
         QuickJS-NG {} through rquickjs {}. wrk figures are medians of {} interleaved rounds of {} s \
         (`wrk -t1`, on the same cores as the servers); ↑ higher is better, ↓ lower is better. \
         edge (V8) is the default build; edge on QuickJS the `quickjs` build, measured in the same \
         rounds. Every other cell is that system's figure and, in brackets, edge (V8)'s figure \
         divided by it. Load average at the start and end of the run: {} and {}.",
        date.get(..10).unwrap_or(&date),
        if s["quick"].as_bool() == Some(true) {
            "quick"
        } else {
            "full"
        },
        text(&m["cpu"]),
        text(&m["cores"]),
        text(&m["memory_gib"]),
        text(&m["kernel"]),
        text(&v["deno"]),
        text(&v["workerd"]),
        text(&v["quickjs-ng"]),
        text(&v["rquickjs"]),
        text(&s["rounds"]),
        text(&s["seconds_per_run"]),
        text(&report["load_average"]["start"]),
        text(&report["load_average"]["end"]),
    );
    let mut out = wrap(&intro, "", WIDTH) + "\n";
    let results = report["results"].as_array().cloned().unwrap_or_default();
    out.push_str(&table::markdown(&table::rows(&results)));
    out.push('\n');
    for note in report["notes"].as_array().into_iter().flatten() {
        let line = format!("- `{}`: {}", text(&note["scenario"]), text(&note["note"]));
        out.push_str(&wrap(&line, "  ", WIDTH));
    }
    for skipped in report["not_run"].as_array().into_iter().flatten() {
        let line = format!(
            "- `{}`: {}",
            text(&skipped["scenario"]),
            text(&skipped["reason"])
        );
        out.push_str(&wrap(&line, "  ", WIDTH));
    }
    out.push_str("\nTargets:\n\n");
    for t in &targets::check(report) {
        out.push_str(&wrap(&format!("- {}", targets::sentence(t)), "  ", WIDTH));
        if let Some(line) = targets::ceiling_line(t) {
            let line = format!("  - ceiling: {line}");
            out.push_str(&wrap(&line, "    ", WIDTH));
        }
    }
    out
}

/// The README's line width for generated prose.
const WIDTH: usize = 100;

/// `text` broken into lines of at most `width` characters at spaces (a longer word stays
/// whole), the first line keeping `text`'s leading spaces, continuation lines starting with
/// `indent`; each line ends with a newline.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = text[..text.len() - text.trim_start().len()].to_string();
    // Whether `line` holds only its leading spaces or the indent, no word yet.
    let mut fresh = true;
    for word in text.split_whitespace() {
        if !fresh && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_string();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}
