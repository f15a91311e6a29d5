fn main() -> std::process::ExitCode {
    elitea_tokens::cli::main()
}
