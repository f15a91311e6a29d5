//! What the commands print: tables for people, one JSON document for scripts.

use crate::domain::{ExpiryStatus, TokenSummary};
use crate::error::Error;
use crate::service::{
    ApplyReport, Created, Deleted, LoginReport, Preview, RotationOutcome, RotationReport, StatusReport,
    TokenList,
};
use chrono::{DateTime, Utc};
use comfy_table::{Attribute, Cell, Color, Table, presets};
use serde::Serialize;
use serde_json::json;
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

/// The full value alone on stdout (so `$(elitea-tokens create ...)` works); the rest on stderr.
fn print_value_once(summary: &TokenSummary, value: &str, verb: &str, json: bool, extra: serde_json::Value) {
    if json {
        let mut document = serde_json::to_value(summary).unwrap_or_default();
        if let (Some(object), Some(extra)) = (document.as_object_mut(), extra.as_object()) {
            object.insert("token".into(), json!(value));
            object.extend(extra.clone());
        }
        return print_json(&document);
    }
    println!("{value}");
    let expiry = match summary.expires {
        Some(at) => format!("expires {} ({})", summary.label, at.format("%Y-%m-%d %H:%M UTC")),
        None => "never expires".to_string(),
    };
    eprintln!(
        "{verb} `{}`; it {expiry}. This is the only time the full token is shown.",
        summary.name
    );
}

pub fn created(created: &Created, now: DateTime<Utc>, json: bool) {
    let summary = created.token.summary(now);
    let stored = match &created.stored_in {
        Ok(kind) => json!({"stored_in": kind}),
        Err(problem) => json!({"stored_in": null, "store_problem": problem}),
    };
    print_value_once(&summary, created.value.expose(), "Created", json, stored);
    if !json {
        match &created.stored_in {
            Ok(kind) => {
                eprintln!("Its value is kept in the {kind} store, so `apply` and `rotate` can use it.")
            }
            Err(problem) => eprintln!(
                "warning: its value could not be kept ({problem}); copy it now, `apply` cannot write it later"
            ),
        }
    }
}

pub fn deleted(deleted: &Deleted, json: bool) {
    if json {
        return print_json(&json!({"deleted": deleted.token, "still_used_in": deleted.still_used_in}));
    }
    println!("Deleted `{}` ({}).", deleted.token.name, deleted.token.value);
    for workspace in &deleted.still_used_in {
        eprintln!(
            "warning: {} still holds this token in its IDE settings; apply another token there",
            workspace.display()
        );
    }
}

pub fn status(report: &StatusReport, on_sandbox: bool, json: bool) {
    if json {
        return print_json(&json!({
            "server": report.server,
            "sandbox": on_sandbox,
            "secret_store": report.secret_store,
            "secret_store_is_fallback": report.secret_store_is_fallback,
            "credential": report.credential,
            "problem": report.problem,
            "tokens": report.tokens,
        }));
    }
    let place = if on_sandbox { " (embedded sandbox)" } else { "" };
    println!("Server:       {}{place}", report.server);
    println!("Secret store: {}", report.secret_store);
    if report.secret_store_is_fallback {
        eprintln!(
            "warning: no keyring works on this machine; token values are kept in an owner-only file (see docs/security.md)"
        );
    }
    match (&report.problem, &report.tokens) {
        (None, Some(counts)) => {
            println!("Credential:   works");
            println!(
                "Tokens:       {} ({} ok, {} expiring within 7 days, {} expired, {} never expiring)",
                counts.total, counts.ok, counts.warning, counts.expired, counts.never
            );
        }
        (Some(problem), _) => println!("Credential:   {} ({})", report.credential, problem.message),
        (None, None) => println!("Credential:   unknown"),
    }
}

pub fn logged_in(report: &LoginReport, json: bool) {
    if json {
        return print_json(report);
    }
    let who = report.user.as_deref().unwrap_or("you");
    println!(
        "Logged in to {} as {who}; the credential is kept in the {} store.",
        report.server, report.secret_store
    );
    if report.secret_store_is_fallback {
        eprintln!("warning: no keyring works on this machine; the credential is in an owner-only file");
    }
}

pub fn logged_out(server: &str, removed: bool, json: bool) {
    if json {
        return print_json(&json!({"server": server, "removed": removed}));
    }
    if removed {
        println!("Logged out of {server}; its credential is forgotten.");
    } else {
        println!("No credential was kept for {server}.");
    }
}

pub fn preview(preview: &Preview, json: bool) {
    if json {
        return print_json(preview);
    }
    let many = preview.files.len() > 1;
    for (n, file) in preview.files.iter().enumerate() {
        if many {
            if n > 0 {
                println!();
            }
            println!("==> {} <==", file.relative);
        }
        print!("{}", file.content);
        if !file.content.ends_with('\n') {
            println!();
        }
    }
    if let Some(note) = &preview.note {
        eprintln!("note: {note}");
    }
}

pub fn applied(report: &ApplyReport, json: bool) {
    if json {
        return print_json(report);
    }
    for file in &report.files {
        println!("{:<9} {}", file.outcome, file.path.display());
        if let Some(gitignore) = &file.gitignore_added {
            println!(
                "{:<9} {} (ignores {})",
                "updated",
                gitignore.display(),
                file.relative
            );
        }
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
}

pub fn rotated(report: &RotationReport, json: bool) {
    match (&report.new, &report.value) {
        (Some(new), Some(value)) if report.outcome != RotationOutcome::RolledBack => {
            let extra = json!({
                "outcome": report.outcome,
                "old_name": report.old_name,
                "old_uuid": report.old_uuid,
                "updated_files": report.updated_files,
                "credential_replaced": report.credential_replaced,
                "warnings": report.warnings,
            });
            print_value_once(
                new,
                value.expose(),
                &format!("Rotated `{}` to", report.old_name),
                json,
                extra,
            );
        }
        _ if json => print_json(report),
        _ => println!(
            "The rotation of `{}` was rolled back; nothing changed.",
            report.old_name
        ),
    }
    if !json {
        for file in &report.updated_files {
            eprintln!("updated {}", file.display());
        }
        if report.credential_replaced {
            eprintln!("The login credential was this token; it is now the successor.");
        }
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
    }
}

pub fn resumed(report: &RotationReport) {
    let what = match report.outcome {
        RotationOutcome::Rotated => "finished",
        RotationOutcome::OldTokenKept => "finished (the old token is still to be deleted)",
        RotationOutcome::RolledBack => "rolled back",
    };
    eprintln!("An interrupted rotation of `{}` was {what}.", report.old_name);
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
}

pub fn nothing_to_resume(json: bool) {
    if json {
        return print_json(&json!({"resumed": null}));
    }
    println!("No interrupted rotation.");
}

/// An error: on stderr for people; as `{"error": {...}}` on stdout for `--json`.
pub fn error(error: &Error, json: bool) {
    if json {
        return print_json(&json!({ "error": error }));
    }
    eprintln!("error: {}", error.message);
    for candidate in &error.candidates {
        eprintln!("  {}  {}  {}", candidate.uuid, candidate.value, candidate.label);
    }
}
