//! The results table: one row per figure, with the baseline measured in the same run, the
//! ratio and the goal. Printed for people and written as JSON for tools and the README.

use std::fmt::Write as _;

use serde::Serialize;

/// Whether more of a figure is better (throughput) or less (latency, size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
    /// A count that must be exactly the goal (duplicates: 0).
    Exact,
}

/// A figure another system reached in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: String,
    pub value: f64,
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub unit: String,
    pub ours: f64,
    pub better: Better,
    pub baseline: Option<Baseline>,
    /// How many times better ours is than the baseline (above 1: ahead).
    pub ratio: Option<f64>,
    pub goal: Option<f64>,
    pub goal_met: Option<bool>,
    /// How it was measured, or why the figure is what it is.
    pub note: Option<String>,
}

/// The rows collected so far; sections add to it as they finish.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
}

/// Builder for a row, so call sites name only what they have.
pub struct RowBuilder<'a> {
    report: &'a mut Report,
    row: Row,
}

impl Report {
    pub fn add(
        &mut self,
        workload: &str,
        metric: &str,
        unit: &str,
        ours: f64,
        better: Better,
    ) -> RowBuilder<'_> {
        let row = Row {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            unit: unit.to_owned(),
            ours,
            better,
            baseline: None,
            ratio: None,
            goal: None,
            goal_met: None,
            note: None,
        };
        RowBuilder { report: self, row }
    }

    /// A fixed-width text table.
    pub fn table(&self) -> String {
        let header = [
            "workload", "metric", "ours", "baseline", "theirs", "ratio", "goal",
        ];
        let cells: Vec<[String; 7]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.workload.clone(),
                    row.metric.clone(),
                    format!("{} {}", number(row.ours), row.unit),
                    row.baseline
                        .as_ref()
                        .map_or(String::new(), |baseline| baseline.name.clone()),
                    row.baseline.as_ref().map_or(String::new(), |baseline| {
                        format!("{} {}", number(baseline.value), row.unit)
                    }),
                    row.ratio
                        .map_or(String::new(), |ratio| format!("{ratio:.2}x")),
                    goal_cell(row),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
                // Text left, numbers right.
                if index < 2 || index == 3 {
                    let _ = write!(text, "{cell:<width$}  ");
                } else {
                    let _ = write!(text, "{cell:>width$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&header.map(str::to_owned));
        line(&widths.map(|width| "-".repeat(width)));
        for row in &cells {
            line(row);
        }
        out
    }

    /// The same table in Markdown, for the README.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| workload | metric | ours | baseline | theirs | ratio | goal |\n|---|---|--:|---|--:|--:|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} {} | {} | {} | {} | {} |",
                row.workload,
                row.metric,
                number(row.ours),
                row.unit,
                row.baseline
                    .as_ref()
                    .map_or(String::new(), |baseline| baseline.name.clone()),
                row.baseline
                    .as_ref()
                    .map_or(String::new(), |baseline| format!(
                        "{} {}",
                        number(baseline.value),
                        row.unit
                    )),
                row.ratio
                    .map_or(String::new(), |ratio| format!("{ratio:.2}x")),
                goal_cell(row),
            );
        }
        out
    }
}

impl RowBuilder<'_> {
    pub fn baseline(mut self, name: &str, value: f64) -> Self {
        let ours = self.row.ours;
        self.row.ratio = match self.row.better {
            Better::Higher if value > 0.0 => Some(ours / value),
            Better::Lower if ours > 0.0 => Some(value / ours),
            _ => None,
        };
        self.row.baseline = Some(Baseline {
            name: name.to_owned(),
            value,
        });
        self
    }

    pub fn goal(mut self, goal: f64) -> Self {
        let ours = self.row.ours;
        self.row.goal_met = Some(match self.row.better {
            Better::Higher => ours >= goal,
            Better::Lower => ours <= goal,
            Better::Exact => ours == goal,
        });
        self.row.goal = Some(goal);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.row.note = Some(note.into());
        self
    }
}

impl Drop for RowBuilder<'_> {
    fn drop(&mut self) {
        let row = self.row.clone();
        println!(
            "  {}: {} = {} {}",
            row.workload,
            row.metric,
            number(row.ours),
            row.unit
        );
        self.report.rows.push(row);
    }
}

fn goal_cell(row: &Row) -> String {
    match (row.goal, row.goal_met) {
        (Some(goal), Some(met)) => {
            let relation = match row.better {
                Better::Higher => ">=",
                Better::Lower => "<=",
                Better::Exact => "=",
            };
            format!(
                "{relation} {} {}",
                number(goal),
                if met { "met" } else { "MISSED" }
            )
        }
        _ => String::new(),
    }
}

/// Three significant digits at most, thousands separated: 1,234,567 / 12.3 / 0.123.
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 || value.fract() == 0.0 {
        let digits = format!("{:.0}", magnitude);
        let mut grouped = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if value < 0.0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_grouped() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(250.0), "250");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn ratios_say_how_many_times_better_ours_is() {
        let mut report = Report::default();
        report
            .add("queue", "rate", "jobs/s", 2000.0, Better::Higher)
            .baseline("peer", 500.0)
            .goal(1000.0);
        report
            .add("pickup", "p50", "ms", 5.0, Better::Lower)
            .baseline("peer", 20.0)
            .goal(1.0);
        assert_eq!(report.rows[0].ratio, Some(4.0));
        assert_eq!(report.rows[0].goal_met, Some(true));
        assert_eq!(report.rows[1].ratio, Some(4.0));
        assert_eq!(report.rows[1].goal_met, Some(false));
        assert!(report.table().contains("MISSED"));
    }
}
