//! Link the release binary with the code its start-up runs laid out together.
//!
//! `link/startup.order` names the functions a start-up runs (to the `initialize` answer, the
//! first `elitea/listTokens` and an `elitea-tokens list`), as the suite's
//! `--write-link-order` recorded them under callgrind. The linker puts them first in `.text`, so
//! the start-up faults in a few neighbouring pages instead of pages spread over 9 MB of code.
//! Names the build no longer has are skipped: a stale file costs speed, never a build.
//!
//! Only for release builds on x86_64 Linux, where rustc (1.90 and later) links with LLD, which
//! reads the file. `ELITEA_TOKENS_LINK_ORDER=0` leaves it out, for a build linked otherwise.
//! `ELITEA_TOKENS_LINK_MAP=PATH` also writes the linker's map there: how the suite names the
//! functions of a stripped binary and checks the file against the build.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/startup.order");
    println!("cargo:rerun-if-env-changed=ELITEA_TOKENS_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=ELITEA_TOKENS_LINK_MAP");

    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("PROFILE") != "release"
        || var("ELITEA_TOKENS_LINK_ORDER") == "0"
    {
        return;
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/startup.order");
    if order.is_file() {
        linker_arg(&format!("--symbol-ordering-file={}", order.display()));
        linker_arg("--no-warn-symbol-ordering");
    }
    let map = var("ELITEA_TOKENS_LINK_MAP");
    if !map.is_empty() {
        linker_arg(&format!("-Map={map}"));
    }
}

/// One argument for the linker itself, passed whole through the compiler driver (`-Xlinker`,
/// not `-Wl,`, which would split a path at its commas).
fn linker_arg(arg: &str) {
    println!("cargo:rustc-link-arg-bins=-Xlinker");
    println!("cargo:rustc-link-arg-bins={arg}");
}
