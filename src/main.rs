fn main() -> std::process::ExitCode {
    pulse::app::tune_malloc();
    pulse::cli::main()
}
