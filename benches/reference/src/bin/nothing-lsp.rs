//! A language server that does nothing (see `Cargo.toml`).

fn main() {
    reference::serve_nothing();
}
