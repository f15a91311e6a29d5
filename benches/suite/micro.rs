//! criterion for the in-process benchmarks: one configuration for the suite, and the estimates
//! read back from criterion's own output (`<dir>/**/new/{benchmark,estimates}.json`).

use crate::Settings;
use criterion::Criterion;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// criterion's median and median absolute deviation of one benchmark, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub median: f64,
    pub mad: f64,
}

impl Estimate {
    /// `± 1.2 µs (MAD)`
    pub fn spread_text(&self) -> String {
        format!("± {} (MAD)", crate::stats::seconds(self.mad))
    }
}

/// Every estimate criterion wrote, by full id (`group/function/parameter`).
pub struct Estimates(HashMap<String, Estimate>);

impl Estimates {
    pub fn get(&self, id: &str) -> Estimate {
        *self
            .0
            .get(id)
            .unwrap_or_else(|| panic!("criterion has no estimate for {id}"))
    }
}

pub fn criterion(settings: &Settings, dir: &Path) -> Criterion {
    let (samples, warm_up, measure, resamples) = if settings.quick {
        (10, Duration::from_millis(50), Duration::from_millis(200), 1_000)
    } else {
        (50, Duration::from_millis(500), Duration::from_secs(3), 20_000)
    };
    Criterion::default()
        .output_directory(dir)
        .without_plots()
        .sample_size(samples)
        .warm_up_time(warm_up)
        .measurement_time(measure)
        .nresamples(resamples)
}

pub fn read(dir: &Path) -> Estimates {
    let mut found = HashMap::new();
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && path.parent().is_some_and(|p| p.ends_with("new"))
            {
                let json =
                    |p: PathBuf| -> Option<Value> { serde_json::from_slice(&std::fs::read(p).ok()?).ok() };
                let (Some(benchmark), Some(estimates)) =
                    (json(path.clone()), json(path.with_file_name("estimates.json")))
                else {
                    continue;
                };
                let ns = |key: &str| estimates[key]["point_estimate"].as_f64().unwrap_or(f64::NAN) * 1e-9;
                if let Some(id) = benchmark["full_id"].as_str() {
                    found.insert(
                        id.to_string(),
                        Estimate {
                            median: ns("median"),
                            mad: ns("median_abs_dev"),
                        },
                    );
                }
            }
        }
    }
    Estimates(found)
}
