fn main() -> std::process::ExitCode {
    cliq_sync::cli::main()
}
