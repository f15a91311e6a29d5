//! Summaries of timing samples: the median and the interquartile range, which a few slow runs
//! on a busy machine do not drag around the way a mean and a standard deviation would.

use std::time::Duration;

/// Median and spread of a set of samples, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        Summary::of_secs(&samples.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
    }

    pub fn of_secs(samples: &[f64]) -> Summary {
        assert!(!samples.is_empty(), "a summary needs at least one sample");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Summary {
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            n: sorted.len(),
        }
    }

    /// `1.23 ms`
    pub fn median_text(&self) -> String {
        seconds(self.median)
    }

    /// `IQR 1.20–1.31 ms (n=50)`
    pub fn spread_text(&self) -> String {
        format!("IQR {}–{} (n={})", seconds(self.q1), seconds(self.q3), self.n)
    }
}

/// Linear interpolation between the closest ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// A duration in the unit that reads best: `850 ns`, `12.4 µs`, `3.21 ms`, `1.50 s`.
pub fn seconds(secs: f64) -> String {
    let (value, unit) = if secs < 1e-6 {
        (secs * 1e9, "ns")
    } else if secs < 1e-3 {
        (secs * 1e6, "µs")
    } else if secs < 1.0 {
        (secs * 1e3, "ms")
    } else {
        (secs, "s")
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else if value >= 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// `1.07x`
pub fn ratio(subject: f64, reference: f64) -> String {
    format!("{:.2}x", subject / reference)
}

/// `18.3 MB` (10^6 bytes, as `ps` and `top` show kB).
pub fn megabytes(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1000.0)
}
