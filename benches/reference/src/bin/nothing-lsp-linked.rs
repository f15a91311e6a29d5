//! The do-nothing server with elitea-tokens linked in but never run (see `Cargo.toml`).

fn main() -> std::process::ExitCode {
    // An opaque `false`: the product stays reachable, so the linker keeps all of it (and the
    // loader relocates all of it), but it never runs.
    if std::hint::black_box(false) {
        return elitea_tokens::cli::main();
    }
    reference::serve_nothing();
    std::process::ExitCode::SUCCESS
}
