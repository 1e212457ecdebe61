//! Load profiles: k6-style stages (ramp linearly from the previous target to this stage's
//! target over its duration), evaluated as "how many virtual users are active at `t`".

use std::time::Duration;

/// One stage: reach `target` VUs linearly over `secs` seconds (a hold when the target does
/// not change).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stage {
    pub(crate) secs: f64,
    pub(crate) target: u32,
}

/// A profile: VUs at t = 0, then the stages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    pub(crate) start: u32,
    pub(crate) stages: Vec<Stage>,
}

fn st(secs: f64, target: u32) -> Stage {
    Stage { secs, target }
}

impl Profile {
    /// The demo's "dynamic" scenario shape: 1 VU → 4 → 16 → 32 → 48 → 32 → 16 → 4 → 1, each
    /// level held `hold` seconds (48 held `peak_hold`), ramps of `ramp` seconds.
    pub(crate) fn spike(hold: f64, peak_hold: f64, ramp: f64) -> Profile {
        let mut stages = vec![st(hold, 1)];
        let levels = [4, 16, 32, 48, 32, 16, 4, 1];
        for &l in &levels {
            stages.push(st(ramp, l));
            stages.push(st(if l == 48 { peak_hold } else { hold }, l));
        }
        Profile { start: 1, stages }
    }

    /// The demo's timings (140 s).
    pub(crate) fn demo() -> Profile {
        Profile::spike(10.0, 20.0, 5.0)
    }

    /// The full mode's timings: the demo's shape at half its durations (70 s), so the whole
    /// report takes about a quarter of an hour.
    pub(crate) fn full() -> Profile {
        Profile::spike(5.0, 10.0, 2.5)
    }

    /// The quick mode's timings: 1 s holds, a 4 s hold at 48 VUs, 0.5 s ramps (16 s).
    pub(crate) fn quick() -> Profile {
        Profile::spike(1.0, 4.0, 0.5)
    }

    /// Parses `demo`, `full`, `quick` or `HOLD,PEAK_HOLD,RAMP` seconds.
    pub(crate) fn parse(s: &str) -> Result<Profile, String> {
        match s {
            "demo" => Ok(Profile::demo()),
            "full" => Ok(Profile::full()),
            "quick" => Ok(Profile::quick()),
            other => {
                let v: Vec<f64> = other
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        format!("stages '{other}': want demo, full, quick or HOLD,PEAK,RAMP")
                    })?;
                match v.as_slice() {
                    [h, p, r] if *h > 0.0 && *p > 0.0 && *r >= 0.0 => {
                        Ok(Profile::spike(*h, *p, *r))
                    }
                    _ => Err(format!("stages '{other}': want HOLD,PEAK,RAMP seconds > 0")),
                }
            }
        }
    }

    /// Total duration.
    pub(crate) fn total(&self) -> Duration {
        Duration::from_secs_f64(self.stages.iter().map(|s| s.secs).sum())
    }

    /// The largest VU count.
    pub(crate) fn max_vus(&self) -> u32 {
        self.stages
            .iter()
            .map(|s| s.target)
            .max()
            .unwrap_or(0)
            .max(self.start)
    }

    /// Active VUs at `t` seconds (0 after the end).
    pub(crate) fn vus_at(&self, t: f64) -> u32 {
        let mut from = self.start as f64;
        let mut left = t;
        for s in &self.stages {
            if left < s.secs {
                let v = from + (s.target as f64 - from) * (left / s.secs);
                return v.round() as u32;
            }
            left -= s.secs;
            from = s.target as f64;
        }
        0
    }

    /// The seconds `[a, b)` (whole seconds from the start) during which the peak is held
    /// for the full second.
    pub(crate) fn peak_seconds(&self) -> (u64, u64) {
        let peak = self.max_vus();
        let mut t = 0.0;
        for s in &self.stages {
            let prev_t = t;
            t += s.secs;
            if s.target == peak && self.vus_at(prev_t + 1e-9) == peak {
                return (prev_t.ceil() as u64, t.floor() as u64);
            }
        }
        (0, 0)
    }

    /// One line: `1 VU 10 s → 4 (5 s ramp, 10 s) → …`.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let mut prev = self.start;
        for s in &self.stages {
            if s.target == prev {
                out.push_str(&format!("{} VU {} s", s.target, fmt_s(s.secs)));
            } else {
                out.push_str(&format!(" → ramp {} s → ", fmt_s(s.secs)));
            }
            prev = s.target;
        }
        format!("{out} ({} s)", fmt_s(self.total().as_secs_f64()))
    }
}

fn fmt_s(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_profile() {
        let p = Profile::demo();
        assert_eq!(p.total(), Duration::from_secs(140));
        assert_eq!(p.max_vus(), 48);
        assert_eq!(p.vus_at(0.0), 1);
        assert_eq!(p.vus_at(9.9), 1);
        assert_eq!(p.vus_at(12.5), 3); // halfway through the 1 → 4 ramp: 2.5 rounds to 3
        assert_eq!(p.vus_at(15.0), 4);
        assert_eq!(p.vus_at(65.0), 48);
        assert_eq!(p.vus_at(139.9), 1);
        assert_eq!(p.vus_at(140.0), 0);
        assert_eq!(p.peak_seconds(), (60, 80));
        assert!(
            p.describe().starts_with("1 VU 10 s → ramp 5 s → 4 VU 10 s"),
            "{}",
            p.describe()
        );
    }

    #[test]
    fn full_is_the_demo_at_half_its_durations() {
        let f = Profile::full();
        assert_eq!(f.total(), Duration::from_secs(70));
        assert_eq!(f.peak_seconds(), (30, 40));
        assert_eq!(Profile::parse("full").unwrap(), f);
        assert_eq!(Profile::parse("demo").unwrap(), Profile::demo());
    }

    #[test]
    fn quick_and_custom() {
        let q = Profile::quick();
        assert_eq!(q.total(), Duration::from_secs(16));
        assert_eq!(q.peak_seconds(), (6, 10));
        let c = Profile::parse("1,3,0.5").unwrap();
        assert_eq!(c.max_vus(), 48);
        assert!(Profile::parse("x").is_err());
        assert!(Profile::parse("1,0,1").is_err());
    }
}
