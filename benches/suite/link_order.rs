//! `link/startup.order`: the functions a start-up runs, which `build.rs` has the linker lay out
//! together at the front of `.text`.
//!
//! `--write-link-order` records them: the release binary runs under callgrind through a
//! daemon's start-up (to the `initialize` answer and the first `elitea/listTokens` of a logged-in
//! daemon, on 10 tokens) and an `elitea-tokens list`, and every function callgrind saw it
//! enter is named from the linker's map (the binary is stripped). Every run of the suite then
//! reports how many of the names the build still has: names carry a hash of their crate's
//! version and build settings, so a new compiler or dependency leaves the file stale (slower
//! start-up, nothing worse) until it is written again.

use crate::fixture::{self, SandboxProcess};
use crate::lsp::{Lsp, initialize_params};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Where `build.rs` reads the order.
pub fn order_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("link/startup.order")
}

/// The functions of the binary's `.text`, by start address, from the linker's map: each input
/// section `.text.<symbol>` (function sections), its address and size.
pub struct TextMap {
    sections: BTreeMap<u64, (u64, String)>,
}

impl TextMap {
    pub fn read(path: &Path) -> std::io::Result<TextMap> {
        let text = std::fs::read_to_string(path)?;
        Ok(TextMap::parse(&text))
    }

    /// lld's map: `VMA LMA Size Align Out In Symbol`, an input section's line reading
    /// `<vma> <lma> <size> <align>         <object>:(.text.<symbol>)`.
    fn parse(text: &str) -> TextMap {
        let mut sections = BTreeMap::new();
        for line in text.lines() {
            let Some((fields, section)) = line.rsplit_once(":(") else {
                continue;
            };
            let Some(section) = section.strip_suffix(')') else {
                continue;
            };
            let Some(symbol) = [".text.unlikely.", ".text.hot.", ".text.startup.", ".text."]
                .iter()
                .find_map(|prefix| section.strip_prefix(prefix))
            else {
                continue;
            };
            let mut numbers = fields.split_whitespace();
            let (Some(address), Some(_), Some(size)) = (numbers.next(), numbers.next(), numbers.next())
            else {
                continue;
            };
            if let (Ok(address), Ok(size)) = (u64::from_str_radix(address, 16), u64::from_str_radix(size, 16))
                && size > 0
            {
                sections.insert(address, (size, symbol.to_string()));
            }
        }
        TextMap { sections }
    }

    /// The function whose code holds `address`.
    fn function_at(&self, address: u64) -> Option<&str> {
        let (start, (size, symbol)) = self.sections.range(..=address).next_back()?;
        (address < start + size).then_some(symbol.as_str())
    }
}

/// How many of the order file's names the suite's build has, of how many: None when the
/// suite did not build the binary (`ELITEA_BENCH_BIN`) or the file is missing. Panics when the
/// build has them but did not lay them out first (`build.rs` did not pass the file).
pub fn coverage() -> Option<(usize, usize)> {
    let map = TextMap::read(&fixture::link_map()?).ok()?;
    let order = std::fs::read_to_string(order_file()).ok()?;
    assert!(!map.sections.is_empty(), "the link map names no function");
    let names: Vec<&str> = order.lines().filter(|l| !l.is_empty()).collect();
    let present: HashSet<&str> = map.sections.values().map(|(_, s)| s.as_str()).collect();
    let found: HashSet<&str> = names.iter().copied().filter(|n| present.contains(n)).collect();
    // Laid out first: the build's first functions by address are names of the file. Not all
    // of them: a section the linker moves for a name of the file may be named in the map after
    // another symbol it also defines (std's generic code, built in several codegen units).
    let in_front = map
        .sections
        .values()
        .take(found.len())
        .filter(|(_, s)| found.contains(s.as_str()))
        .count();
    assert!(
        in_front * 10 >= found.len() * 9,
        "the functions of link/startup.order are not at the front of .text: build.rs did not pass it"
    );
    Some((found.len(), names.len()))
}

/// The names of the functions callgrind saw entered in `binary`, first seen first: callgrind
/// names a stripped binary's functions by address (`fn=0x…`, with `'N` for recursion depth).
fn executed(callgrind_out: &str, binary: &Path, map: &TextMap, into: &mut Vec<String>) {
    let mut in_binary = false;
    let mut seen: HashSet<String> = into.iter().cloned().collect();
    for line in callgrind_out.lines() {
        if let Some(object) = line.strip_prefix("ob=") {
            in_binary = Path::new(object.trim()).file_name() == binary.file_name();
            continue;
        }
        let Some(function) = line.strip_prefix("fn=") else {
            continue;
        };
        if !in_binary {
            continue;
        }
        let address = function.split('\'').next().unwrap_or_default();
        let Some(address) = address
            .strip_prefix("0x")
            .and_then(|a| u64::from_str_radix(a, 16).ok())
        else {
            continue;
        };
        if let Some(symbol) = map.function_at(address)
            && seen.insert(symbol.to_string())
        {
            into.push(symbol.to_string());
        }
    }
}

/// `--write-link-order`: records the start-up's functions and writes `link/startup.order`.
pub fn write() {
    let valgrind = fixture::which("valgrind").unwrap_or_else(|()| {
        eprintln!("--write-link-order runs the binary under callgrind: install valgrind");
        std::process::exit(2);
    });
    let map_path = fixture::link_map().unwrap_or_else(|| {
        eprintln!("--write-link-order names functions from the suite's own build: unset ELITEA_BENCH_BIN");
        std::process::exit(2);
    });
    let map = TextMap::read(&map_path)
        .unwrap_or_else(|e| panic!("cannot read the link map {}: {e}", map_path.display()));
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = SandboxProcess::start();
    sandbox.seed(9, "seed", &[Some(86_400 * 30), None]);
    let home = dir.path().join("home");
    fixture::login(&home, &sandbox);
    let workspace = fixture::workspace(dir.path());
    let out = dir.path().join("callgrind");
    std::fs::create_dir_all(&out).expect("callgrind's directory");
    let under = |name: &str| {
        fixture::command_under(
            &home,
            &valgrind,
            &[
                "--quiet",
                "--tool=callgrind",
                "--compress-strings=no",
                "--compress-pos=no",
                &format!("--callgrind-out-file={}/{name}.%p", out.display()),
            ],
        )
    };

    let mut daemon = under("serve");
    daemon.arg("serve");
    let mut lsp = Lsp::spawn(&mut daemon);
    lsp.request("initialize", initialize_params(&workspace, json!({})))
        .expect("initialize");
    lsp.notify("initialized", json!({}));
    let answer = lsp.request("elitea/listTokens", json!({})).expect("listTokens");
    assert_eq!(answer["total"], 10, "listTokens answered {answer}");
    lsp.close();

    let status = under("list")
        .arg("list")
        .stdout(Stdio::null())
        .status()
        .expect("list runs");
    assert!(status.success(), "`elitea-tokens list` under callgrind failed");

    let mut order = Vec::new();
    let mut outputs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("callgrind's output")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    outputs.sort();
    for output in &outputs {
        let text = std::fs::read_to_string(output).expect("callgrind's output");
        executed(&text, fixture::bin(), &map, &mut order);
    }
    assert!(
        !order.is_empty(),
        "callgrind saw no function of {}",
        fixture::bin().display()
    );
    let mut file = order.join("\n");
    file.push('\n');
    std::fs::write(order_file(), file).expect("write link/startup.order");
    eprintln!(
        "{} functions written to {} (rebuild the release binary to lay them out)",
        order.len(),
        order_file().display()
    );
}
