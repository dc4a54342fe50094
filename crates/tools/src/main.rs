fn main() -> std::process::ExitCode {
    pulse::app::tune_malloc();
    pulse_tools::main()
}
