fn main() -> std::process::ExitCode {
    pulse::malloc::bound_arenas();
    pulse::cli::main()
}
