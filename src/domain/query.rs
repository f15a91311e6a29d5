//! The Personal Tokens table: search, sort and pages, as the web page offers them.

use super::token::Token;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    #[default]
    Name,
    Expires,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

/// The page sizes the table offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum PageSize {
    Five,
    #[default]
    Ten,
    Fifty,
    Hundred,
}

impl PageSize {
    pub fn get(self) -> usize {
        match self {
            PageSize::Five => 5,
            PageSize::Ten => 10,
            PageSize::Fifty => 50,
            PageSize::Hundred => 100,
        }
    }
}

impl TryFrom<u32> for PageSize {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        Ok(match n {
            5 => PageSize::Five,
            10 => PageSize::Ten,
            50 => PageSize::Fifty,
            100 => PageSize::Hundred,
            _ => {
                return Err(format!("page size {n} is not offered; use 5, 10, 50 or 100"));
            }
        })
    }
}

impl From<PageSize> for u32 {
    fn from(size: PageSize) -> u32 {
        size.get() as u32
    }
}

impl FromStr for PageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a page size; use 5, 10, 50 or 100"))?;
        PageSize::try_from(n)
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// What the table is asked to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Query {
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    pub sort: SortKey,
    pub direction: SortDirection,
    /// 1-based.
    pub page: usize,
    pub page_size: PageSize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            search: None,
            sort: SortKey::Name,
            direction: SortDirection::Asc,
            page: 1,
            page_size: PageSize::Ten,
        }
    }
}

/// One page of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<'a> {
    pub rows: Vec<&'a Token>,
    /// 1-based; may be past `pages` when the caller asked for it (then `rows` is empty).
    pub page: usize,
    /// At least 1, even for an empty table.
    pub pages: usize,
    /// How many tokens match the search.
    pub total: usize,
}

/// Orders names as people read them: case-insensitively, then exactly (allocating only for
/// names outside ASCII). One pass from the first byte that differs: until a byte outside ASCII
/// turns up, the ASCII comparison decides exactly as the full case folding would.
fn compare_names(a: &str, b: &str) -> Ordering {
    let folded = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<Vec<_>>();
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Bytes both names share fold alike, and end at a character boundary wherever the next
    // bytes are ASCII: the comparison starts after them.
    let same = same_prefix(x, y);
    let primary = 'primary: {
        for (&p, &q) in x[same..].iter().zip(&y[same..]) {
            if !p.is_ascii() || !q.is_ascii() {
                break 'primary folded(a).cmp(&folded(b));
            }
            match p.to_ascii_lowercase().cmp(&q.to_ascii_lowercase()) {
                Ordering::Equal => {}
                decided => break 'primary decided,
            }
        }
        // One is a prefix of the other, ignoring case: the shorter first, as folding gives
        // every character at least one.
        a.len().cmp(&b.len())
    };
    primary.then_with(|| a.cmp(b))
}

/// How many leading bytes `x` and `y` share, compared eight at a time: names in a list often
/// share a long prefix (`seed-0`, `project-ci-`), and sorting compares each many times.
fn same_prefix(x: &[u8], y: &[u8]) -> usize {
    let mut same = 0;
    for (p, q) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap_or_default());
        let differ = word(p) ^ word(q);
        if differ != 0 {
            // Little-endian: the lowest set bit is in the first byte that differs.
            return same + (differ.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    same + x[same..]
        .iter()
        .zip(&y[same..])
        .take_while(|(p, q)| p == q)
        .count()
}

/// Dated tokens first, soonest first; never-expiring ones after every dated one.
fn compare_expiry(a: &Token, b: &Token) -> Ordering {
    match (a.expires, b.expires) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Whether `name` contains `needle_lower` (already lower-cased), ignoring case.
fn contains_ignoring_case(name: &str, needle_lower: &str) -> bool {
    if name.is_ascii() && needle_lower.is_ascii() {
        let (hay, needle) = (name.as_bytes(), needle_lower.as_bytes());
        needle.is_empty()
            || hay
                .windows(needle.len())
                .any(|w| w.iter().zip(needle).all(|(h, n)| h.to_ascii_lowercase() == *n))
    } else {
        name.to_lowercase().contains(needle_lower)
    }
}

impl Query {
    /// Applies the search, the sort and the page to `tokens` (a slice, or the daemon's
    /// [`ListedTokens`](super::ListedTokens)).
    pub fn run<'a>(&self, tokens: impl IntoIterator<Item = &'a Token>) -> Page<'a> {
        let needle = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let matching = tokens.into_iter().filter(|t| {
            needle
                .as_deref()
                .is_none_or(|needle| contains_ignoring_case(&t.name, needle))
        });
        // The direction applies to the chosen key; ties always read by name, A to Z.
        let directed = |order: Ordering| match self.direction {
            SortDirection::Asc => order,
            SortDirection::Desc => order.reverse(),
        };
        let by_name = |a: &&Token, b: &&Token| compare_names(&a.name, &b.name).then(a.uuid.cmp(&b.uuid));
        let order = |a: &&Token, b: &&Token| match self.sort {
            SortKey::Name => directed(by_name(a, b)),
            SortKey::Expires => directed(compare_expiry(a, b)).then_with(|| by_name(a, b)),
        };
        let size = self.page_size.get();
        let page = self.page.max(1);
        // The order is total, so either way the rows are exactly the page a full sort gives.
        let (rows, total) = if matching
            .size_hint()
            .1
            .is_some_and(|listed| page.saturating_mul(size).saturating_mul(FIRST_PAGES) <= listed)
        {
            Self::leading(matching, page.saturating_mul(size), order)
        } else {
            Self::selected(matching.collect(), page, size, order)
        };
        let start = (page - 1).saturating_mul(size).min(rows.len());
        Page {
            rows: rows[start..].to_vec(),
            page,
            pages: total.div_ceil(size).max(1),
            total,
        }
    }

    /// The first `wanted` rows in `order`, kept in order as the tokens stream by, and how many
    /// tokens there were: one comparison for most tokens (with the last row kept) and no
    /// vector of them all. For the first pages of a long list.
    fn leading<'a>(
        matching: impl Iterator<Item = &'a Token>,
        wanted: usize,
        order: impl Fn(&&'a Token, &&'a Token) -> Ordering,
    ) -> (Vec<&'a Token>, usize) {
        let mut rows: Vec<&Token> = Vec::with_capacity(wanted + 1);
        let mut total = 0;
        for token in matching {
            total += 1;
            if rows.len() == wanted
                && rows
                    .last()
                    .is_none_or(|last| order(&token, last) != Ordering::Less)
            {
                continue;
            }
            let at = rows.partition_point(|row| order(row, &token) == Ordering::Less);
            rows.insert(at, token);
            rows.truncate(wanted);
        }
        (rows, total)
    }

    /// The rows up to the end of the page, with the page's own in order, and how many rows
    /// there were: the first rows brought forward, then the page's rows among them, and the
    /// page sorted. Linear in the table plus the page's own sort.
    fn selected<'a>(
        mut rows: Vec<&'a Token>,
        page: usize,
        size: usize,
        order: impl Fn(&&'a Token, &&'a Token) -> Ordering,
    ) -> (Vec<&'a Token>, usize) {
        let total = rows.len();
        let start = (page - 1).saturating_mul(size).min(total);
        let end = start.saturating_add(size).min(total);
        if start < end {
            if end < total {
                rows.select_nth_unstable_by(end - 1, &order);
            }
            if start > 0 {
                rows[..end].select_nth_unstable_by(start, &order);
            }
            rows[start..end].sort_unstable_by(&order);
        }
        rows.truncate(end);
        (rows, total)
    }
}

/// A page that ends within the first eighth of the list is found by [`Query::leading`]; a later
/// one by [`Query::selected`], which is linear whatever the page.
const FIRST_PAGES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    fn token(n: u128, name: &str, days: Option<i64>) -> Token {
        let base = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        Token {
            uuid: Uuid::from_u128(n),
            id: n as i64,
            name: name.into(),
            masked: format!("...abc{n:04}").into(),
            expires: days.map(|d| base + chrono::Duration::days(d)),
        }
    }

    fn tokens() -> Vec<Token> {
        vec![
            token(1, "VSCode-MacBook-Dev", Some(30)),
            token(2, "jetbrains-ci", Some(3)),
            token(3, "Local-Dev", None),
            token(4, "alpha", Some(-2)),
            token(5, "vscode-linux", Some(90)),
            token(6, "Zed", None),
        ]
    }

    fn names(page: &Page) -> Vec<String> {
        page.rows.iter().map(|t| t.name.to_string()).collect()
    }

    #[test]
    fn search_sort_and_direction() {
        let all = tokens();
        let query = |search: Option<&str>, sort, direction| Query {
            search: search.map(String::from),
            sort,
            direction,
            ..Query::default()
        };
        use SortDirection::*;
        use SortKey::*;
        let cases: Vec<(Query, Vec<&str>)> = vec![
            (
                query(None, Name, Asc),
                vec![
                    "alpha",
                    "jetbrains-ci",
                    "Local-Dev",
                    "vscode-linux",
                    "VSCode-MacBook-Dev",
                    "Zed",
                ],
            ),
            (
                query(None, Name, Desc),
                vec![
                    "Zed",
                    "VSCode-MacBook-Dev",
                    "vscode-linux",
                    "Local-Dev",
                    "jetbrains-ci",
                    "alpha",
                ],
            ),
            (
                query(None, Expires, Asc),
                vec![
                    "alpha",
                    "jetbrains-ci",
                    "VSCode-MacBook-Dev",
                    "vscode-linux",
                    "Local-Dev",
                    "Zed",
                ],
            ),
            (
                query(None, Expires, Desc),
                vec![
                    "Local-Dev",
                    "Zed",
                    "vscode-linux",
                    "VSCode-MacBook-Dev",
                    "jetbrains-ci",
                    "alpha",
                ],
            ),
            (
                query(Some("VSCODE"), Name, Asc),
                vec!["vscode-linux", "VSCode-MacBook-Dev"],
            ),
            (
                query(Some("dev"), Expires, Asc),
                vec!["VSCode-MacBook-Dev", "Local-Dev"],
            ),
            (
                query(Some("  "), Name, Asc),
                vec![
                    "alpha",
                    "jetbrains-ci",
                    "Local-Dev",
                    "vscode-linux",
                    "VSCode-MacBook-Dev",
                    "Zed",
                ],
            ),
            (query(Some("nothing"), Name, Asc), vec![]),
        ];
        for (q, expected) in cases {
            assert_eq!(names(&q.run(&all)), expected, "{q:?}");
        }
    }

    #[test]
    fn non_ascii_names_fold_case() {
        let all = vec![
            token(1, "Über", None),
            token(2, "über-2", None),
            token(3, "apfel", None),
        ];
        let q = Query {
            search: Some("ÜBER".into()),
            ..Query::default()
        };
        assert_eq!(names(&q.run(&all)), vec!["Über", "über-2"]);
    }

    /// The one-pass comparison decides every pair as folding both names in full does.
    #[test]
    fn names_compare_as_full_case_folding_does() {
        let folded = |s: &str| s.chars().flat_map(char::to_lowercase).collect::<Vec<_>>();
        let by_folding = |a: &str, b: &str| folded(a).cmp(&folded(b)).then_with(|| a.cmp(b));
        let names = [
            "",
            "a",
            "A",
            "ab",
            "aB",
            "abc",
            "b",
            "Über",
            "über",
            "über-2",
            "über-a",
            "über-A",
            "über-B",
            "uber",
            "Ubera",
            "ab\u{e9}",
            "AB\u{c9}",
            "ab\u{e9}z",
            "abz",
            "\u{130}x",
            "ix",
            "seed-00001",
            "seed-0001",
            "Seed-00001",
            "seed-00001-\u{3a3}",
            "seed-00001-\u{3c3}",
            "project-ci-alpha-1",
            "Project-CI-alpha-2",
            "project-ci-alphabet",
            "project-ci-ALPHA-1x",
            "project-ci-\u{e9}t\u{e9}-0001",
            "project-ci-\u{c9}T\u{c9}-0001",
            "project-ci-\u{e9}t\u{e9}-0001-ab",
            "z",
            "\u{1f600}",
            "ZZ",
        ];
        for a in names {
            for b in names {
                assert_eq!(compare_names(a, b), by_folding(a, b), "{a:?} against {b:?}");
            }
        }
    }

    /// Shared leading bytes, across and within eight-byte words.
    #[test]
    fn same_prefix_counts_shared_bytes() {
        let cases = [
            ("", "", 0),
            ("", "abc", 0),
            ("abc", "abd", 2),
            ("abcdefgh", "abcdefgh", 8),
            ("abcdefgh", "abcdefgX", 7),
            ("abcdefghi", "abcdefghj", 8),
            ("project-ci-alpha-1", "project-ci-alpha-2", 17),
            ("project-ci-alpha-1", "project-ci-alpha-1x", 18),
            ("seed-00001", "Seed-00001", 0),
            ("\u{e9}t\u{e9}", "\u{e9}t\u{e8}", 4),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_prefix(a.as_bytes(), b.as_bytes()), same, "{a:?} {b:?}");
            assert_eq!(same_prefix(b.as_bytes(), a.as_bytes()), same, "{b:?} {a:?}");
        }
    }

    #[test]
    fn pages_of_every_size() {
        let all: Vec<Token> = (0..23).map(|n| token(n, &format!("t{n:02}"), Some(10))).collect();
        let cases = [
            (PageSize::Ten, 1, 3, "t00", 10),
            (PageSize::Ten, 3, 3, "t20", 3),
            (PageSize::Five, 5, 5, "t20", 3),
            (PageSize::Fifty, 1, 1, "t00", 23),
            (PageSize::Hundred, 1, 1, "t00", 23),
        ];
        for (page_size, page, pages, first, len) in cases {
            let result = Query {
                page,
                page_size,
                ..Query::default()
            }
            .run(&all);
            assert_eq!((result.pages, result.total, result.rows.len()), (pages, 23, len));
            assert_eq!(result.rows[0].name, first);
        }
        let past = Query {
            page: 9,
            ..Query::default()
        }
        .run(&all);
        assert!(past.rows.is_empty());
        assert_eq!((past.page, past.pages), (9, 3));
        let empty = Query::default().run(&[]);
        assert_eq!((empty.pages, empty.total), (1, 0));
    }

    #[test]
    fn page_sizes_parse() {
        assert_eq!("50".parse::<PageSize>(), Ok(PageSize::Fifty));
        assert!(
            "7".parse::<PageSize>()
                .unwrap_err()
                .contains("use 5, 10, 50 or 100")
        );
        assert!("x".parse::<PageSize>().is_err());
    }

    /// Pages come from a partial selection, not a full sort: every page of every size, key and
    /// direction must be exactly the matching slice of the fully sorted table, ties included
    /// (names equal but for case, equal expiries, equal names).
    #[test]
    fn every_page_is_the_slice_of_a_full_sort() {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as i64
        };
        let words = [
            "alpha", "Alpha", "beta", "BETA", "gamma", "delta", "Delta", "omega",
        ];
        let all: Vec<Token> = (0..157u128)
            .map(|n| {
                let name = format!("{}-{}", words[next() as usize % words.len()], next() % 4);
                let days = (next() % 5 != 0).then(|| next() % 6);
                token(n + 1, &name, days)
            })
            .collect();
        type Key = (bool, Option<chrono::DateTime<chrono::Utc>>, String, String, Uuid);
        let key = |t: &Token, sort: SortKey| -> Key {
            let expires = if sort == SortKey::Expires { t.expires } else { None };
            let never = sort == SortKey::Expires && t.expires.is_none();
            (
                never,
                expires,
                t.name.to_ascii_lowercase().to_string(),
                t.name.to_string(),
                t.uuid,
            )
        };
        for search in [None, Some("a-"), Some("ELTA")] {
            for sort in [SortKey::Name, SortKey::Expires] {
                for direction in [SortDirection::Asc, SortDirection::Desc] {
                    let needle = search.map(str::to_lowercase);
                    let mut sorted: Vec<&Token> = all
                        .iter()
                        .filter(|t| needle.as_ref().is_none_or(|n| t.name.to_lowercase().contains(n)))
                        .collect();
                    // The reference: a full sort; a descending sort reverses the key, and ties
                    // by name stay A to Z.
                    sorted.sort_by(|a, b| {
                        let (ka, kb) = (key(a, sort), key(b, sort));
                        let primary = (ka.0, ka.1).cmp(&(kb.0, kb.1));
                        let primary = if direction == SortDirection::Desc {
                            primary.reverse()
                        } else {
                            primary
                        };
                        let names = (&ka.2, &ka.3, ka.4).cmp(&(&kb.2, &kb.3, kb.4));
                        match sort {
                            SortKey::Name if direction == SortDirection::Desc => names.reverse(),
                            SortKey::Name => names,
                            SortKey::Expires => primary.then(names),
                        }
                    });
                    for size in [PageSize::Five, PageSize::Ten, PageSize::Fifty, PageSize::Hundred] {
                        let pages = sorted.len().div_ceil(size.get()).max(1);
                        for page in 1..=pages + 1 {
                            let query = Query {
                                search: search.map(String::from),
                                sort,
                                direction,
                                page,
                                page_size: size,
                            };
                            let got = query.run(&all);
                            let from = ((page - 1) * size.get()).min(sorted.len());
                            let to = (from + size.get()).min(sorted.len());
                            assert_eq!(got.rows, sorted[from..to].to_vec(), "{query:?}");
                            assert_eq!(got.total, sorted.len());
                        }
                    }
                }
            }
        }
    }
}
