//! The suite's results as they are measured: every figure with its runs, the peers' versions,
//! what was not run; printed per scenario as it goes and written as JSON at the end.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::settings::Settings;
use crate::{clock, machine, stats, table, targets};

/// One measured figure of one system: all its runs and their median.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The scenario (`hello`, `json`, …).
    pub scenario: &'static str,
    /// The variant within it (`c32`, `get`, `new_app`, …).
    pub variant: String,
    /// `edge`, `deno`, `workerd` or `quickjs`.
    pub system: &'static str,
    /// What was measured (`req_per_s`, `p50_ms`, …).
    pub metric: &'static str,
    /// Its unit, for people (`req/s`, `ms`, `MiB`).
    pub unit: &'static str,
    /// Every run's value, in the order measured.
    pub runs: Vec<f64>,
}

/// Everything one suite run measured.
pub struct Report {
    date: String,
    load_at_start: f64,
    settings: Value,
    samples: Vec<Sample>,
    versions: BTreeMap<String, String>,
    notes: Vec<(String, String)>,
    not_run: Vec<(String, String)>,
}

impl Report {
    /// An empty report for a run with these settings, dated now.
    pub fn new(settings: &Settings) -> Report {
        Report {
            date: clock::iso8601_now(),
            load_at_start: machine::load_average(),
            settings: settings.to_json(),
            samples: Vec::new(),
            versions: BTreeMap::new(),
            notes: Vec::new(),
            not_run: Vec::new(),
        }
    }

    /// Records a figure. `runs` must not be empty.
    pub fn add(&mut self, sample: Sample) {
        assert!(
            !sample.runs.is_empty(),
            "{} {} has no runs",
            sample.scenario,
            sample.metric
        );
        self.samples.push(sample);
    }

    /// Records the version of a peer (`deno`, `workerd`, `rquickjs`, …).
    pub fn version(&mut self, name: &str, version: String) {
        self.versions.insert(name.to_string(), version);
    }

    /// Records a remark about how a scenario was measured; printed and kept in the JSON.
    pub fn note(&mut self, scenario: &str, text: impl Into<String>) {
        let text = text.into();
        println!("  note: {text}");
        self.notes.push((scenario.to_string(), text));
    }

    /// Records a scenario that was listed but not run, and why.
    pub fn not_run(&mut self, scenario: &str, reason: &str) {
        self.not_run
            .push((scenario.to_string(), reason.to_string()));
    }

    /// Prints the table of one scenario's medians, edge against each peer.
    pub fn print_scenario(&self, scenario: &str) {
        let results: Vec<Value> = self
            .samples
            .iter()
            .filter(|s| s.scenario == scenario)
            .map(sample_json)
            .collect();
        println!("{}", table::console(&table::rows(&results)));
    }

    /// Prints which targets the run meets.
    pub fn print_targets(&self, json: &Value) {
        let load = &json["load_average"];
        println!(
            "\n1-minute load average at the start and end of the run: {} and {} (other work skews every figure)",
            load["start"], load["end"]
        );
        println!("\n== targets");
        for t in json["targets"].as_array().into_iter().flatten() {
            println!("  {}", targets::sentence(t));
            if let Some(line) = targets::ceiling_line(t) {
                println!("    ceiling: {line}");
            }
        }
    }

    /// The whole report as JSON: date, machine, settings, versions, results, ratios, targets.
    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self.samples.iter().map(sample_json).collect();
        let ratios = table::ratios(&results);
        let mut report = json!({
            "date": self.date,
            "machine": machine::describe(),
            "load_average": {"start": self.load_at_start, "end": machine::load_average()},
            "settings": self.settings,
            "versions": self.versions,
            "results": results,
            "ratios": ratios,
            "notes": self.notes.iter().map(|(s, t)| json!({"scenario": s, "note": t})).collect::<Vec<_>>(),
            "not_run": self.not_run.iter().map(|(s, r)| json!({"scenario": s, "reason": r})).collect::<Vec<_>>(),
        });
        report["targets"] = Value::Array(targets::check(&report));
        report
    }
}

fn sample_json(s: &Sample) -> Value {
    json!({
        "scenario": s.scenario,
        "variant": s.variant,
        "system": s.system,
        "metric": s.metric,
        "unit": s.unit,
        "median": stats::median(&s.runs),
        "runs": s.runs,
    })
}
