//! Goal checks: a goal (`≥ x`, `≤ x`), a comparison's row with its ratio and verdict, and the
//! arithmetic of ratios (a ratio only of measured values, the median of alternated rounds).

/// A goal: `≥ x` or `≤ x` (also `>=`, `<=`, `<`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    /// The goal a cell states; `None` for one that is not a number (`report`).
    pub(super) fn parse(s: &str) -> Option<Goal> {
        type Ctor = fn(f64) -> Goal;
        const PREFIXES: &[(&str, Ctor)] = &[
            ("≥", Goal::AtLeast),
            (">=", Goal::AtLeast),
            ("≤", Goal::AtMost),
            ("<=", Goal::AtMost),
            ("<", Goal::AtMost),
        ];
        let s = s.trim();
        PREFIXES.iter().find_map(|(prefix, ctor)| {
            let rest = s.strip_prefix(prefix)?;
            leading_number(rest).map(ctor)
        })
    }

    /// Whether `v` meets the goal (the bound included).
    pub(super) fn met(self, v: f64) -> bool {
        match self {
            Goal::AtLeast(g) => v >= g,
            Goal::AtMost(g) => v <= g,
        }
    }

    /// The goal as the report writes it (`≥ 0.8`).
    fn show(self) -> String {
        match self {
            Goal::AtLeast(g) => format!("≥ {}", trim_num(g)),
            Goal::AtMost(g) => format!("≤ {}", trim_num(g)),
        }
    }
}

/// `v` with at most two decimals and no trailing zeros.
fn trim_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The first number in `s` (markdown emphasis, spaces and a trailing `×` ignored).
pub(super) fn leading_number(s: &str) -> Option<f64> {
    let s = s.trim().trim_start_matches('*').trim();
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse().ok()
}

/// One row of the goals table.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GoalRow {
    /// Where the comparison comes from: `spike`, `module`, `cluster`, `criterion`.
    pub(super) section: String,
    /// What is compared with what.
    pub(super) name: String,
    /// The measured side, with its unit (or why it was not measured).
    pub(super) measured: String,
    /// What it is compared with, measured in the same run.
    pub(super) peer: String,
    /// Measured ÷ peer (or the inverse, as the name says), when both were measured.
    pub(super) ratio: Option<f64>,
    /// The goal as given (`≥ 4`, `<= 1.5`, `report` for none).
    pub(super) goal: String,
    /// Whether the ratio meets a number goal.
    pub(super) met: Option<bool>,
    /// Why it is not met, when known.
    pub(super) why: String,
}

impl GoalRow {
    /// A comparison; its verdict follows from `ratio` and `goal` (none for a `report` goal).
    pub(super) fn new(
        section: &str,
        name: &str,
        measured: String,
        peer: String,
        ratio: Option<f64>,
        goal: &str,
    ) -> GoalRow {
        let met = match (Goal::parse(goal), ratio) {
            (Some(g), Some(r)) => Some(g.met(r)),
            _ => None,
        };
        GoalRow {
            section: section.into(),
            name: name.into(),
            measured,
            peer,
            ratio,
            goal: goal.into(),
            met,
            why: String::new(),
        }
    }

    /// The verdict cell.
    pub(super) fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "✓ met",
            Some(false) => "✗ not met",
            None => "–",
        }
    }

    /// The goal as the report writes it: a number goal normalised (`≥ 0.8`), else as given.
    pub(super) fn goal_shown(&self) -> String {
        Goal::parse(&self.goal).map_or(self.goal.clone(), Goal::show)
    }

    /// A goal with a number whose ratio is missing: not measured in this run.
    pub(super) fn unmeasured(&self) -> bool {
        self.ratio.is_none() && Goal::parse(&self.goal).is_some()
    }
}

/// `a ÷ b`, when `b` is positive and `a` finite.
pub(super) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub(super) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals() {
        assert_eq!(Goal::parse("≥ 0.80"), Some(Goal::AtLeast(0.8)));
        assert_eq!(Goal::parse("≤ 2 ✓"), Some(Goal::AtMost(2.0)));
        assert_eq!(Goal::parse(">= 5"), Some(Goal::AtLeast(5.0)));
        assert_eq!(Goal::parse("<= 1.5"), Some(Goal::AtMost(1.5)));
        assert_eq!(Goal::parse("< 2"), Some(Goal::AtMost(2.0)));
        assert_eq!(Goal::parse("report"), None);
        assert_eq!(Goal::parse("≥ much"), None);
        assert!(Goal::AtLeast(0.8).met(0.8));
        assert!(!Goal::AtMost(2.0).met(2.1));
        assert_eq!(leading_number("**0.72**"), Some(0.72));
        assert_eq!(leading_number(" 1.30× "), Some(1.3));
        assert_eq!(leading_number("-0.5 s"), Some(-0.5));
        assert_eq!(leading_number("–"), None);
    }

    #[test]
    fn goal_shown_and_verdicts() {
        let row = |ratio, goal| GoalRow::new("s", "n", String::new(), String::new(), ratio, goal);
        let met = row(Some(4.2), ">= 4.00");
        assert_eq!((met.met, met.verdict()), (Some(true), "✓ met"));
        assert_eq!(met.goal_shown(), "≥ 4");
        let missed = row(Some(1.6), "<= 1.5");
        assert_eq!((missed.met, missed.verdict()), (Some(false), "✗ not met"));
        assert_eq!(missed.goal_shown(), "≤ 1.5");
        let report = row(Some(3.16), "report");
        assert_eq!((report.met, report.verdict()), (None, "–"));
        assert_eq!(report.goal_shown(), "report");
        assert!(!report.unmeasured());
        assert!(row(None, "≥ 1").unmeasured());
        assert!(!row(None, "report").unmeasured());
        assert_eq!(Goal::AtLeast(0.126).show(), "≥ 0.13");
        assert_eq!(Goal::AtMost(10.0).show(), "≤ 10");
    }

    #[test]
    fn ratios_and_medians() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::INFINITY, 2.0), None);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[0.9, 0.5, 0.85]), 0.85);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
