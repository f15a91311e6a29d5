//! Naming a token's successor.

use chrono::NaiveDate;

use super::token::MAX_NAME_LEN;

/// `VSCode-MacBook-Dev` rotated on 2026-11-22 becomes `VSCode-MacBook-Dev-2026-11-22`; a date a
/// previous rotation added is replaced rather than stacked; a name already taken gets `-2`, `-3`...
pub fn successor_name(old: &str, today: NaiveDate, is_taken: impl Fn(&str) -> bool) -> String {
    let base = strip_rotation_suffix(old);
    let date = today.format("%Y-%m-%d").to_string();
    let room = MAX_NAME_LEN.saturating_sub(date.len() + 1 + 4);
    let base: String = base.chars().take(room).collect();
    let first = format!("{base}-{date}");
    if !is_taken(&first) {
        return first;
    }
    (2..)
        .map(|n| format!("{first}-{n}"))
        .find(|candidate| !is_taken(candidate))
        .unwrap_or(first)
}

/// `name-2026-11-22` or `name-2026-11-22-3` → `name`.
fn strip_rotation_suffix(name: &str) -> &str {
    let without_counter = match name.rsplit_once('-') {
        Some((head, n))
            if !n.is_empty()
                && n.len() <= 4
                && n.bytes().all(|b| b.is_ascii_digit())
                && ends_with_date(head) =>
        {
            head
        }
        _ => name,
    };
    if ends_with_date(without_counter) {
        &without_counter[..without_counter.len() - 11]
    } else {
        name
    }
}

fn ends_with_date(name: &str) -> bool {
    name.len() > 11
        && name.is_char_boundary(name.len() - 11)
        && name.as_bytes()[name.len() - 11] == b'-'
        && NaiveDate::parse_from_str(&name[name.len() - 10..], "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_are_dated_and_unique() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let cases: Vec<(&str, Vec<&str>, &str)> = vec![
            ("VSCode-MacBook-Dev", vec![], "VSCode-MacBook-Dev-2026-11-22"),
            (
                "VSCode-MacBook-Dev",
                vec!["VSCode-MacBook-Dev-2026-11-22"],
                "VSCode-MacBook-Dev-2026-11-22-2",
            ),
            (
                "VSCode-MacBook-Dev-2026-11-22",
                vec!["VSCode-MacBook-Dev-2026-11-22"],
                "VSCode-MacBook-Dev-2026-11-22-2",
            ),
            (
                "VSCode-MacBook-Dev-2026-11-22-2",
                vec!["VSCode-MacBook-Dev-2026-11-22", "VSCode-MacBook-Dev-2026-11-22-2"],
                "VSCode-MacBook-Dev-2026-11-22-3",
            ),
            ("ci-2026-10-01", vec![], "ci-2026-11-22"),
            ("build-2", vec![], "build-2-2026-11-22"),
            ("2026-10-01", vec![], "2026-10-01-2026-11-22"),
        ];
        for (old, taken, expected) in cases {
            let got = successor_name(old, today, |n| taken.contains(&n));
            assert_eq!(got, expected, "{old} with {taken:?}");
        }
        let long = "x".repeat(MAX_NAME_LEN);
        assert!(successor_name(&long, today, |_| false).len() <= MAX_NAME_LEN);
    }
}
