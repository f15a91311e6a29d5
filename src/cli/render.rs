//! What the commands print: tables for people, one JSON document for scripts.

use crate::domain::{ExpiryStatus, TokenSummary};
use crate::error::Error;
use crate::service::{Created, StatusReport, TokenList};
use chrono::{DateTime, Utc};
use comfy_table::{Attribute, Cell, Color, Table, presets};
use serde::Serialize;
use std::io::IsTerminal;

fn color_enabled(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none()
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot write JSON: {e}"),
    }
}

/// The Expiration column's mark and color.
fn mark(status: ExpiryStatus) -> (&'static str, Color) {
    match status {
        ExpiryStatus::Ok => ("✔", Color::Green),
        ExpiryStatus::Never => ("✔", Color::Green),
        ExpiryStatus::Warning => ("⚠", Color::Yellow),
        ExpiryStatus::Expired => ("✖", Color::DarkGrey),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn list(list: &TokenList, on_sandbox: bool, json: bool) {
    if json {
        return print_json(list);
    }
    let color = color_enabled(std::io::stdout().is_terminal());
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    let header = |text: &str| Cell::new(text).add_attribute(Attribute::Bold);
    table.set_header(vec![
        header("Token name"),
        header("Token value"),
        header("Expiration"),
    ]);
    for row in &list.tokens {
        let (symbol, tint) = mark(row.status);
        let expiration = Cell::new(format!("{symbol} {}", row.label));
        table.add_row(vec![
            Cell::new(&row.name),
            Cell::new(&row.value),
            if color { expiration.fg(tint) } else { expiration },
        ]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    if list.tokens.is_empty() {
        if list.total == 0 {
            println!("No tokens.");
        } else {
            println!("No tokens on page {}.", list.page);
        }
    } else {
        println!("{}", table.trim_fmt());
    }
    let place = if on_sandbox {
        " on the embedded sandbox"
    } else {
        ""
    };
    println!(
        "page {} of {}, {}{place}",
        list.page,
        list.pages,
        plural(list.total, "token", "tokens")
    );
}

/// The created token: the full value alone on stdout (so `$(elitea-tokens create ...)` works),
/// the reminder on stderr.
pub fn created(created: &Created, now: DateTime<Utc>, json: bool) {
    let summary = created.token.summary(now);
    if json {
        #[derive(Serialize)]
        struct CreatedJson<'a> {
            #[serde(flatten)]
            summary: &'a TokenSummary,
            token: &'a str,
        }
        return print_json(&CreatedJson {
            summary: &summary,
            token: created.value.expose(),
        });
    }
    println!("{}", created.value.expose());
    let expiry = match summary.expires {
        Some(at) => format!("expires {} ({})", summary.label, at.format("%Y-%m-%d %H:%M UTC")),
        None => "never expires".to_string(),
    };
    eprintln!(
        "Created `{}`; it {expiry}. This is the only time the full token is shown: store it now.",
        summary.name
    );
}

pub fn deleted(summary: &TokenSummary, json: bool) {
    if json {
        #[derive(Serialize)]
        struct DeletedJson<'a> {
            deleted: &'a TokenSummary,
        }
        return print_json(&DeletedJson { deleted: summary });
    }
    println!("Deleted `{}` ({}).", summary.name, summary.value);
}

pub fn status(report: &StatusReport, on_sandbox: bool, json: bool) {
    if json {
        #[derive(Serialize)]
        struct StatusJson<'a> {
            #[serde(flatten)]
            report: &'a StatusReport,
            sandbox: bool,
        }
        return print_json(&StatusJson {
            report,
            sandbox: on_sandbox,
        });
    }
    let place = if on_sandbox { " (embedded sandbox)" } else { "" };
    println!("Server:     {}{place}", report.server);
    match (&report.problem, &report.tokens) {
        (None, Some(counts)) => {
            println!("Credential: works");
            println!(
                "Tokens:     {} ({} ok, {} expiring within 7 days, {} expired, {} never expiring)",
                counts.total, counts.ok, counts.warning, counts.expired, counts.never
            );
        }
        (Some(problem), _) => println!("Credential: {} ({})", report.credential, problem.message),
        (None, None) => println!("Credential: unknown"),
    }
}

/// An error: on stderr for people; as `{"error": {...}}` on stdout for `--json`.
pub fn error(error: &Error, json: bool) {
    if json {
        #[derive(Serialize)]
        struct ErrorJson<'a> {
            error: &'a Error,
        }
        return print_json(&ErrorJson { error });
    }
    eprintln!("error: {}", error.message);
    for candidate in &error.candidates {
        eprintln!("  {}  {}  {}", candidate.uuid, candidate.value, candidate.label);
    }
}
