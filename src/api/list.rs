//! The token list, parsed as its body arrives. A list of 1,000 tokens is 143 KB that hyper
//! reads in several pieces; parsing each whole item as soon as it is in means the parse no
//! longer waits for the last byte, and when the pieces are handed to another thread (the
//! daemon's list fetched at start) the parse runs while the rest is still being read.
//!
//! Items are parsed by serde_json itself, one at a time; an item cut off by the end of a piece
//! reads as "end of input" and is tried again once more of it has come.

use super::error::{ApiError, json_problem};
use super::server::ServerUrl;
use super::wire::WireToken;
use crate::domain::{ListedTokens, Token};
use compact_str::CompactString;

/// About the least an item of the list takes in the body (the smallest, with empty name and
/// value, is 90 bytes: a uuid alone is 36). Used to size the list from `Content-Length` once;
/// a body of smaller items only makes the list grow as usual.
const LEAST_ITEM_BYTES: u64 = 90;

/// The least taken from a new piece (copied after the cut-off item) to complete that item.
const LEAST_STEP: usize = 4096;

/// What the reader expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `[`
    Open,
    /// An item or `]`.
    FirstItem,
    /// `,` or `]`.
    Separator,
    /// An item, after a `,`.
    Item,
    /// Nothing but white space.
    End,
}

/// Reads a list answer (`GET auth/token/`) piece by piece. Every failure names the server and
/// the position in the list, never the body's text.
pub struct ListReader {
    server: ServerUrl,
    status: u16,
    expect: Expect,
    tokens: Vec<Token>,
    /// The start of an item (or of a character) the last piece cut off, waiting for the rest.
    carry: Vec<u8>,
    /// `carry`'s length when its item last proved incomplete: it is tried again once it has
    /// doubled, so an item spread over many pieces still costs linear time.
    tried_at: usize,
    /// Why the carried item is incomplete, reported if the body ends there.
    cut_off: Option<serde_json::Error>,
}

impl ListReader {
    /// A reader for an answer of `status` from `server` whose body is `length` bytes, if known.
    pub(crate) fn new(server: &ServerUrl, status: u16, length: Option<u64>) -> ListReader {
        let items = length.map_or(0, |bytes| {
            bytes.min(super::client::PRESIZE_AT_MOST) / LEAST_ITEM_BYTES
        });
        ListReader {
            server: server.clone(),
            status,
            expect: Expect::Open,
            tokens: Vec::with_capacity(items as usize),
            carry: Vec::new(),
            tried_at: 0,
            cut_off: None,
        }
    }

    /// A reader for the part of the same list that follows the `,` at `comma` (an offset
    /// [`item_boundary`] found) in a body of `length` bytes: items, then the list's `]`.
    pub(crate) fn for_the_rest(server: &ServerUrl, status: u16, comma: u64, length: u64) -> ListReader {
        let rest = length.saturating_sub(comma).min(super::client::PRESIZE_AT_MOST);
        ListReader {
            server: server.clone(),
            status,
            expect: Expect::Item,
            tokens: Vec::with_capacity((rest / LEAST_ITEM_BYTES) as usize),
            carry: Vec::new(),
            tried_at: 0,
            cut_off: None,
        }
    }

    /// Parses the item held from earlier pieces if it is whole by now (otherwise that waits
    /// until what is held has doubled, or for the end of the body). An error is the one the
    /// item would give however the body went on.
    pub fn settle(&mut self) -> Result<(), ApiError> {
        if self.carry.is_empty() {
            return Ok(());
        }
        let mut carry = std::mem::take(&mut self.carry);
        let text = complete_characters(&carry).map_err(|_| self.not_utf8())?;
        let used = self.read(text)?;
        carry.drain(..used);
        self.carry = carry;
        self.tried_at = self.carry.len();
        Ok(())
    }

    /// Whether what has been pushed ends with a whole item (white space aside): where a reader
    /// for the rest takes over, at the `,` that follows. Call [`ListReader::settle`] first.
    pub fn ends_after_an_item(&self) -> bool {
        self.expect == Expect::Separator && self.carry.is_empty()
    }

    /// The list: this reader's items, then those of the reader for the rest (see
    /// [`ListReader::for_the_rest`]), once [`ListReader::ends_after_an_item`] holds. The two
    /// stay apart: joined, the rest would be copied into fresh pages.
    pub fn finish_with(self, rest: Vec<Token>) -> ListedTokens {
        debug_assert!(self.ends_after_an_item());
        ListedTokens::in_two_parts(self.tokens, rest)
    }

    /// Takes the next piece of the body, parsing every item it completes.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), ApiError> {
        let mut at = 0;
        while at < piece.len() {
            if self.carry.is_empty() {
                let text = complete_characters(&piece[at..]).map_err(|_| self.not_utf8())?;
                let used = self.read(text)?;
                self.carry.extend_from_slice(&piece[at + used..]);
                self.tried_at = self.carry.len();
                return Ok(());
            }
            // An item began in an earlier piece: take as little of this one as completes it.
            let before = self.carry.len();
            let wanted = (2 * self.tried_at).max(before + LEAST_STEP) - before;
            let taken = wanted.min(piece.len() - at);
            self.carry.extend_from_slice(&piece[at..at + taken]);
            if self.carry.len() < 2 * self.tried_at {
                return Ok(()); // The piece is used up; try again when the carry has doubled.
            }
            let carry = std::mem::take(&mut self.carry);
            let text = complete_characters(&carry).map_err(|_| self.not_utf8())?;
            let used = self.read(text)?;
            if used >= before {
                // The carried item ended in this piece: go on reading the piece in place.
                at += used - before;
                self.carry = carry;
                self.carry.clear();
            } else {
                at += taken;
                self.carry = carry;
                self.carry.drain(..used);
                self.tried_at = self.carry.len();
            }
        }
        Ok(())
    }

    /// The list, once the whole body has been pushed.
    pub fn finish(mut self) -> Result<Vec<Token>, ApiError> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let text = std::str::from_utf8(&carry).map_err(|_| self.not_utf8())?;
            let used = self.read(text)?;
            if used < carry.len() {
                let item = self.tokens.len() + 1;
                return Err(match self.cut_off.take() {
                    Some(e) => self.not_the_api(&format_args!("item {item}: {}", json_problem(&e))),
                    None => self.not_the_api(&"it ended early"),
                });
            }
        }
        match self.expect {
            Expect::End => Ok(self.tokens),
            Expect::Open => Err(self.not_the_api(&"it was empty")),
            _ => Err(self.not_the_api(&format_args!(
                "it ended after {} items, before the list was closed",
                self.tokens.len()
            ))),
        }
    }

    /// Reads every whole step of `text` (a bracket, a separator, an item) and returns the
    /// bytes used; what is left is an item not yet complete.
    fn read(&mut self, text: &str) -> Result<usize, ApiError> {
        let mut at = 0;
        loop {
            let rest = &text[at..];
            let next = rest.trim_start_matches([' ', '\t', '\n', '\r']);
            at += rest.len() - next.len();
            let Some(&byte) = next.as_bytes().first() else {
                return Ok(at);
            };
            match (self.expect, byte) {
                (Expect::Open, b'[') => self.expect = Expect::FirstItem,
                (Expect::Open, b'<') => return Err(self.html()),
                (Expect::Open, _) => return Err(self.not_the_api(&"it is not a list")),
                (Expect::FirstItem | Expect::Separator, b']') => self.expect = Expect::End,
                (Expect::Separator, b',') => self.expect = Expect::Item,
                (Expect::FirstItem | Expect::Item, _) => {
                    let mut items =
                        serde_json::Deserializer::from_str(next).into_iter::<WireToken<CompactString>>();
                    match items.next() {
                        Some(Ok(item)) => {
                            self.tokens.push(item.into_token());
                            self.expect = Expect::Separator;
                            self.cut_off = None;
                            at += items.byte_offset();
                            continue;
                        }
                        Some(Err(e)) if maybe_cut_off(&e, next) => {
                            self.cut_off = Some(e);
                            return Ok(at);
                        }
                        Some(Err(e)) => {
                            let item = self.tokens.len() + 1;
                            let problem = json_problem(&e);
                            return Err(self.not_the_api(&format_args!("item {item}: {problem}")));
                        }
                        None => return Ok(at),
                    }
                }
                (Expect::Separator, _) => {
                    let item = self.tokens.len();
                    return Err(self.not_the_api(&format_args!("expected `,` or `]` after item {item}")));
                }
                (Expect::End, _) => return Err(self.not_the_api(&"more followed the end of the list")),
            }
            at += 1;
        }
    }

    fn not_the_api(&self, problem: &dyn std::fmt::Display) -> ApiError {
        super::client::not_the_api(&self.server, self.status, problem)
    }

    /// Bytes that are not UTF-8. Where in the body is left out: offsets within a piece depend
    /// on how the body was read.
    fn not_utf8(&self) -> ApiError {
        self.not_the_api(&"invalid utf-8")
    }

    fn html(&self) -> ApiError {
        super::client::html_instead(&self.server, self.status)
    }
}

/// Whether `error`, met parsing an item at the start of `text`, may only mean that `text` stops
/// before the item's end. serde_json reports most such cuts as the end of input, but a number
/// cut after its `.`, `e` or sign as an invalid number at the end. An error at the last byte or
/// the one before counts too: calling it a cut only puts the error off until more has come,
/// or until [`ListReader::finish`] reports it.
fn maybe_cut_off(error: &serde_json::Error, text: &str) -> bool {
    if error.is_eof() {
        return true;
    }
    let line_start = match error.line() {
        0 | 1 => 0,
        line => text
            .match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(at, _)| at + 1),
    };
    line_start + error.column() + 1 >= text.len()
}

/// The offset in `piece`, at or after `from`, of the first `,` between a `}` and a `{` (white
/// space aside), as between two items of the list. A guess: a string may hold the same
/// characters. The reader of the part before it confirms it
/// ([`ListReader::ends_after_an_item`]), as only a `,` between items leaves it there.
pub fn item_boundary(piece: &[u8], from: usize) -> Option<usize> {
    let is_space = |byte: &&u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let mut at = from;
    while let Some(found) = piece.get(at..)?.iter().position(|&byte| byte == b',') {
        let comma = at + found;
        let before = piece[..comma].iter().rev().find(|byte| !is_space(byte));
        let after = piece[comma + 1..].iter().find(|byte| !is_space(byte));
        if before == Some(&b'}') && after == Some(&b'{') {
            return Some(comma);
        }
        at = comma + 1;
    }
    None
}

/// `bytes` up to the last whole character: a piece may end inside one, the rest of which comes
/// with the next piece. Bytes that are not UTF-8 at all are an error.
fn complete_characters(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) if e.error_len().is_none() => {
            // SAFETY: `valid_up_to` is the length of the prefix the check just found valid.
            Ok(unsafe { std::str::from_utf8_unchecked(&bytes[..e.valid_up_to()]) })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorKind;

    fn server() -> ServerUrl {
        ServerUrl::parse("https://next.elitea.ai", false).unwrap()
    }

    fn read_in(pieces: &[&[u8]]) -> Result<Vec<Token>, ApiError> {
        let mut reader = ListReader::new(&server(), 200, None);
        for piece in pieces {
            reader.push(piece)?;
        }
        reader.finish()
    }

    fn whole(body: &str) -> Vec<Token> {
        let items: Vec<WireToken<CompactString>> = serde_json::from_str(body).unwrap();
        items.into_iter().map(WireToken::into_token).collect()
    }

    /// Bodies shaped as the API's, with what a piece can be cut through: white space, escapes,
    /// characters of two, three and four bytes, numbers, `null`, nested text that looks like
    /// JSON.
    const BODIES: [&str; 5] = [
        "[]",
        " \n[ ]\n",
        r#"[{"uuid": "0f8a3c1e-1b2d-4e5f-8a9b-0c1d2e3f4a5b", "id": 12345, "name": "laptop", "token": "...abcdefg", "expires": "Sat, 01 Jan 2028 00:00:00 GMT"}]"#,
        "[\n  {\"uuid\":\"11111111-2222-4333-8444-555555555555\",\"id\":7,\"name\":\"caf\u{e9} \u{2603} \u{1f511} },{\\\"x\\\":[1]\",\"token\":\"...1234567\",\"expires\":null},\n  {\"uuid\":\"21111111-2222-4333-8444-555555555555\",\"id\":-8,\"name\":\"a\\u00e9\\n\\\\\",\"token\":\"...7654321\",\"expires\":\"2027-03-04T05:06:07Z\"}\n]\n",
        r#"[{"id":1,"uuid":"31111111-2222-4333-8444-555555555555","expires":null,"token":"...x","name":"","extra":{"nested":[1.5e-3,-2,true,false,{"a":"]"}]}},{"uuid":"41111111-2222-4333-8444-555555555555","id":2,"name":"b","token":"...y","expires":"Mon, 02 Jan 2023 03:04:05 GMT"}]"#,
    ];

    /// Every body, cut in two at every byte and in three at every pair of bytes a prime apart,
    /// reads as the whole body parsed at once.
    #[test]
    fn any_cut_reads_as_the_whole_body() {
        for body in BODIES {
            let expected = whole(body);
            let bytes = body.as_bytes();
            for cut in 0..=bytes.len() {
                let (a, b) = bytes.split_at(cut);
                assert_eq!(read_in(&[a, b]).unwrap(), expected, "{body:?} cut at {cut}");
            }
            for first in 0..bytes.len() {
                let second = (first + 7).min(bytes.len());
                let pieces = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                assert_eq!(
                    read_in(&pieces).unwrap(),
                    expected,
                    "{body:?} cut at {first}, {second}"
                );
            }
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(read_in(&bytewise).unwrap(), expected, "{body:?} a byte at a time");
        }
    }

    /// A long list read in pieces the size hyper reads, and an item longer than many pieces.
    #[test]
    fn long_lists_and_long_items_read_whole() {
        let item = |i: usize, name: &str| {
            format!(
                r#"{{"uuid":"{i:08x}-2222-4333-8444-555555555555","id":{i},"name":"{name}","token":"...abcdefg","expires":"Sat, 01 Jan 2028 00:00:00 GMT"}}"#
            )
        };
        let long_name = "n\u{e9}".repeat(100_000);
        let items: Vec<String> = (0..3_000)
            .map(|i| item(i, if i == 1_500 { &long_name } else { "token" }))
            .collect();
        let body = format!("[{}]", items.join(","));
        let expected = whole(&body);
        for size in [1_000, 8_192, 65_536] {
            let pieces: Vec<&[u8]> = body.as_bytes().chunks(size).collect();
            assert_eq!(read_in(&pieces).unwrap(), expected, "pieces of {size}");
        }
    }

    /// What is not a whole list of tokens is an error that names the problem and quotes none
    /// of the body, however the body is cut.
    #[test]
    fn what_is_not_a_list_is_refused() {
        let secret = "SECRET-VALUE";
        let cases: [(&[u8], &str); 10] = [
            (b"", "it was empty"),
            (b"  \n", "it was empty"),
            (b"<!doctype html><p>SECRET-VALUE</p>", "HTML page instead of the ELITEA API"),
            (br#"{"error": "SECRET-VALUE"}"#, "it is not a list"),
            (br#"[{"uuid":"0f8a3c1e-1b2d-4e5f-8a9b-0c1d2e3f4a5b","id":1,"name":"SECRET-VALUE""#, "item 1: EOF while parsing"),
            (b"[", "it ended after 0 items"),
            (br#"[{"uuid":"0f8a3c1e-1b2d-4e5f-8a9b-0c1d2e3f4a5b","id":"SECRET-VALUE","name":"a","token":"b","expires":null}]"#, "item 1: invalid type"),
            (br#"[{"uuid":"0f8a3c1e-1b2d-4e5f-8a9b-0c1d2e3f4a5b","id":1,"name":"a","token":"b","expires":null} {}]"#, "expected `,` or `]` after item 1"),
            (br#"[] SECRET-VALUE"#, "more followed the end of the list"),
            (b"[{\"uuid\":\"0f8a3c1e-1b2d-4e5f-8a9b-0c1d2e3f4a5b\",\"id\":1,\"name\":\"SECRET-\xff\"", "invalid utf-8"),
        ];
        for (body, expected) in cases {
            for cut in 0..=body.len() {
                let (a, b) = body.split_at(cut);
                let error = read_in(&[a, b]).expect_err(expected);
                assert_eq!(error.kind, ErrorKind::Protocol, "{error}");
                assert_eq!(error.status, Some(200), "{error}");
                assert!(error.message.contains(expected), "cut at {cut}: {error}");
                assert!(!error.message.contains(secret), "cut at {cut}: {error}");
            }
        }
    }

    /// `item_boundary` finds the first `,` between a `}` and a `{` (white space aside) from
    /// where it starts to look, within the piece; a string can hold one too.
    #[test]
    fn item_boundaries_are_commas_between_objects() {
        let cases: [(&str, usize, Option<usize>); 8] = [
            (r#"[{"a":1},{"b":2}]"#, 0, Some(8)),
            (r#"[{"a":1},{"b":2}]"#, 9, None),
            ("[{\"a\":1} ,\n\t{\"b\":2}]", 0, Some(9)),
            (r#"[{"a":[1,2]},{"b":2}]"#, 0, Some(12)),
            (r#"{"a":[1,2],"b":{"c":3}}"#, 0, None),
            (r#"[{"a":"},{"},{"b":2}]"#, 0, Some(8)),
            (r#"[{"a":1},"#, 0, None),
            (r#",{"a":1}"#, 0, None),
        ];
        for (piece, from, expected) in cases {
            assert_eq!(
                item_boundary(piece.as_bytes(), from),
                expected,
                "{piece} from {from}"
            );
        }
    }

    /// A body read up to a `,` between items (in two pieces, cut at every byte), settled, and
    /// read on from the `,` by a reader for the rest, joins into the whole list. At a `,`
    /// inside a string the first reader does not end after an item, so the two are never
    /// joined there.
    #[test]
    fn a_list_read_in_two_parts_joins_into_the_whole() {
        for body in BODIES {
            let bytes = body.as_bytes();
            let expected = whole(body);
            let (mut joined, mut inside_strings) = (0, 0);
            let mut from = 0;
            while let Some(comma) = item_boundary(bytes, from) {
                let mut rest = ListReader::for_the_rest(&server(), 200, comma as u64, bytes.len() as u64);
                let rest = rest.push(&bytes[comma + 1..]).and_then(|()| rest.finish());
                let mut ends = Vec::new();
                for cut in 0..=comma {
                    let mut front = ListReader::new(&server(), 200, None);
                    front.push(&bytes[..cut]).unwrap();
                    front.push(&bytes[cut..comma]).unwrap();
                    front.settle().unwrap();
                    ends.push(front.ends_after_an_item());
                    if front.ends_after_an_item() {
                        let list = front.finish_with(rest.clone().unwrap());
                        assert!(list.iter().eq(&expected), "{body:?} at {comma}, cut at {cut}");
                    }
                }
                assert!(
                    ends.iter().all(|&end| end == ends[0]),
                    "{body:?} at {comma}: {ends:?}"
                );
                if ends[0] {
                    joined += 1;
                } else {
                    inside_strings += 1;
                }
                from = comma + 1;
            }
            assert_eq!(joined, expected.len().saturating_sub(1), "{body:?}");
            let fooled = usize::from(body.contains(r#" },{\"x"#));
            assert_eq!(inside_strings, fooled, "{body:?}");
        }
    }

    /// The list is sized from `Content-Length` once: no growth, and a wrong length is harmless.
    #[test]
    fn the_length_sizes_the_list() {
        let body = BODIES[3];
        for length in [None, Some(0), Some(body.len() as u64), Some(u64::MAX)] {
            let mut reader = ListReader::new(&server(), 200, length);
            reader.push(body.as_bytes()).unwrap();
            assert_eq!(reader.finish().unwrap(), whole(body), "{length:?}");
        }
    }
}
