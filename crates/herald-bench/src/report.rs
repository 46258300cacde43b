//! Figures, their medians across runs, the table on stdout and the JSON file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

/// One measured figure of one run, with its target if it has one.
#[derive(Debug, Clone)]
pub struct Figure {
    pub key: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(t) => value >= t,
            Self::AtMost(t) => value <= t,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::AtLeast(t) => format!(">= {t}"),
            Self::AtMost(t) => format!("<= {t}"),
        }
    }
}

impl Figure {
    /// A figure where more is better.
    pub fn new(key: &str, value: f64, unit: &'static str, at_least: Option<f64>) -> Self {
        Self {
            key: key.to_owned(),
            value,
            unit,
            target: at_least.map(Target::AtLeast),
        }
    }

    /// A figure where less is better.
    pub fn at_most(key: &str, value: f64, unit: &'static str, limit: f64) -> Self {
        Self {
            key: key.to_owned(),
            value,
            unit,
            target: Some(Target::AtMost(limit)),
        }
    }
}

#[derive(Serialize)]
struct Summary {
    median: f64,
    runs: Vec<f64>,
    unit: &'static str,
    target: Option<Target>,
    met: Option<bool>,
}

pub struct Report {
    figures: BTreeMap<String, (Vec<f64>, &'static str, Option<Target>)>,
    settings: BTreeMap<String, Value>,
}

impl Report {
    pub fn new(quick: bool, runs: usize, concurrency: usize) -> Self {
        let mut settings = BTreeMap::new();
        settings.insert("quick".into(), json!(quick));
        settings.insert("runs".into(), json!(runs));
        settings.insert("concurrency".into(), json!(concurrency));
        settings.insert("commit".into(), json!(git_commit()));
        settings.insert(
            "cores".into(),
            json!(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(0)
            ),
        );
        Self {
            figures: BTreeMap::new(),
            settings,
        }
    }

    pub fn setting(&mut self, key: &str, value: u64) {
        self.settings.insert(key.to_owned(), json!(value));
    }

    pub fn label(&mut self, key: &str, value: &str) {
        self.settings.insert(key.to_owned(), json!(value));
    }

    pub fn add(&mut self, figures: Vec<Figure>) {
        for f in figures {
            let entry = self
                .figures
                .entry(f.key)
                .or_insert((Vec::new(), f.unit, f.target));
            entry.0.push(f.value);
        }
    }

    fn summaries(&self) -> BTreeMap<&str, Summary> {
        self.figures
            .iter()
            .map(|(key, (runs, unit, target))| {
                let median = median(runs);
                let met = target.map(|t| t.met(median));
                (
                    key.as_str(),
                    Summary {
                        median,
                        runs: runs.clone(),
                        unit,
                        target: *target,
                        met,
                    },
                )
            })
            .collect()
    }

    pub fn print(&self) {
        println!(
            "{:<42} {:>14} {:<6} {:>12}  met",
            "figure", "median", "unit", "target"
        );
        for (key, s) in self.summaries() {
            let target = s.target.map(Target::describe).unwrap_or_default();
            let met = match s.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            println!(
                "{key:<42} {:>14.1} {:<6} {target:>12}  {met}",
                s.median, s.unit
            );
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let document = json!({"settings": self.settings, "figures": self.summaries()});
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
        Ok(())
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn git_commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn targets_judge_both_directions() {
        assert!(Target::AtLeast(10.0).met(10.0));
        assert!(!Target::AtLeast(10.0).met(9.9));
        assert!(Target::AtMost(5.0).met(4.0));
        assert!(!Target::AtMost(5.0).met(5.1));
    }
}
