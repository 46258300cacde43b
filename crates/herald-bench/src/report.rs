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
    /// The verdict against the target; never given in a quick run.
    met: Option<bool>,
    /// For a fraction: the figure and the one it is a percentage of. Its
    /// "median" is then the ratio of their medians, and it has no runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    derived_from: Option<[String; 2]>,
}

/// A figure read as a percentage of another measured in the same invocation.
struct Fraction {
    of: String,
    to: String,
    target: Target,
}

/// What a quick run prints above its figures, so nobody reads them as results.
const QUICK_NOTICE: &str = "\
Quick run (--quick): this only checks that the benchmark rig works. Every
scenario below ran to the end and its counts matched (every request answered,
every delivery received, sampled signatures verified). Sizes are shrunk and the
build may be a debug one, so these figures measure nothing and are not judged
against any target; BENCHMARKS.md says how to measure.
";

pub struct Report {
    quick: bool,
    figures: BTreeMap<String, (Vec<f64>, &'static str, Option<Target>)>,
    fractions: BTreeMap<String, Fraction>,
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
            quick,
            figures: BTreeMap::new(),
            fractions: BTreeMap::new(),
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

    /// Reports figure `of` as a percentage of figure `to` under `key`, when
    /// both were measured, as the ratio of their medians (runs of different
    /// scenarios are not paired, so there are no per-run fractions).
    pub fn fraction(&mut self, key: &str, of: &str, to: &str, at_least_pct: f64) {
        self.fractions.insert(
            key.to_owned(),
            Fraction {
                of: of.to_owned(),
                to: to.to_owned(),
                target: Target::AtLeast(at_least_pct),
            },
        );
    }

    fn summaries(&self) -> BTreeMap<&str, Summary> {
        let mut summaries: BTreeMap<&str, Summary> = self
            .figures
            .iter()
            .map(|(key, (runs, unit, target))| {
                let median = median(runs);
                (
                    key.as_str(),
                    Summary {
                        median,
                        runs: runs.clone(),
                        unit,
                        target: *target,
                        met: self.verdict(*target, median),
                        derived_from: None,
                    },
                )
            })
            .collect();
        for (key, fraction) in &self.fractions {
            if let Some(summary) = self.fraction_summary(fraction) {
                summaries.insert(key.as_str(), summary);
            }
        }
        summaries
    }

    fn fraction_summary(&self, fraction: &Fraction) -> Option<Summary> {
        let of = median(&self.figures.get(&fraction.of)?.0);
        let to = median(&self.figures.get(&fraction.to)?.0);
        if to.is_nan() || to <= 0.0 {
            return None;
        }
        let pct = of * 100.0 / to;
        Some(Summary {
            median: pct,
            runs: Vec::new(),
            unit: "%",
            target: Some(fraction.target),
            met: self.verdict(Some(fraction.target), pct),
            derived_from: Some([fraction.of.clone(), fraction.to.clone()]),
        })
    }

    /// Whether `value` meets `target`; no verdict at all in a quick run, whose
    /// sizes and build make every figure meaningless as a measurement.
    fn verdict(&self, target: Option<Target>, value: f64) -> Option<bool> {
        if self.quick {
            return None;
        }
        target.map(|t| t.met(value))
    }

    /// The table for stdout: figures with targets and verdicts, or in a quick
    /// run a notice saying what the run checked and the bare figures.
    pub fn render(&self) -> String {
        let mut lines = Vec::new();
        if self.quick {
            lines.push(QUICK_NOTICE.trim_end().to_owned());
            lines.push(String::new());
            lines.push(format!("{:<50} {:>14} {:<6}", "figure", "median", "unit"));
            for (key, s) in self.summaries() {
                lines.push(format!("{key:<50} {:>14.1} {:<6}", s.median, s.unit));
            }
        } else {
            lines.push(format!(
                "{:<50} {:>14} {:<6} {:>12}  met",
                "figure", "median", "unit", "target"
            ));
            for (key, s) in self.summaries() {
                let target = s.target.map(Target::describe).unwrap_or_default();
                let met = match s.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "",
                };
                lines.push(format!(
                    "{key:<50} {:>14.1} {:<6} {target:>12}  {met}",
                    s.median, s.unit
                ));
            }
        }
        // Padding the last column would leave trailing blanks.
        lines
            .iter()
            .map(|l| l.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    pub fn print(&self) {
        print!("{}", self.render());
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

    fn sample(quick: bool) -> Report {
        let mut report = Report::new(quick, 1, 16);
        report.add(vec![
            Figure::new("relay.requests_per_s", 1_000.0, "req/s", None),
            Figure::new("publish.events_per_s", 500.0, "ev/s", Some(20_000.0)),
            Figure::at_most("latency.p50_ms", 1.0, "ms", 5.0),
        ]);
        report.fraction(
            "publish.events_per_s.pct_of_relay",
            "publish.events_per_s",
            "relay.requests_per_s",
            60.0,
        );
        report
    }

    #[test]
    fn quick_output_says_what_it_checked_and_gives_no_verdict() {
        let text = sample(true).render();
        assert!(text.contains("only checks that the benchmark rig works"));
        let header = text
            .lines()
            .find(|l| l.starts_with("figure"))
            .expect("a header");
        assert!(
            !header.contains("met") && !header.contains("target"),
            "{header}"
        );
        for line in text.lines().filter(|l| l.contains('.')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(!words.contains(&"NO") && !words.contains(&"yes"), "{line}");
            assert!(!line.contains(">=") && !line.contains("<="), "{line}");
        }
        assert!(sample(true).summaries().values().all(|s| s.met.is_none()));
        assert!(text.lines().all(|l| l == l.trim_end()), "trailing blanks");
    }

    #[test]
    fn full_output_judges_every_target() {
        let text = sample(false).render();
        assert!(text.lines().next().is_some_and(|h| h.ends_with("met")));
        let publish = text
            .lines()
            .find(|l| l.starts_with("publish.events_per_s "))
            .expect("the publish row");
        assert!(publish.ends_with("NO"), "{publish}");
        let latency = text
            .lines()
            .find(|l| l.starts_with("latency.p50_ms"))
            .expect("the latency row");
        assert!(latency.ends_with("yes"), "{latency}");
    }

    #[test]
    fn a_fraction_is_the_ratio_of_medians_and_needs_both() {
        let mut report = sample(false);
        let summaries = report.summaries();
        let fraction = &summaries["publish.events_per_s.pct_of_relay"];
        assert_eq!(fraction.median, 50.0);
        assert_eq!(fraction.met, Some(false));
        assert!(fraction.runs.is_empty());
        report.fraction(
            "missing.pct_of_relay",
            "missing",
            "relay.requests_per_s",
            40.0,
        );
        assert!(!report.summaries().contains_key("missing.pct_of_relay"));
    }
}
