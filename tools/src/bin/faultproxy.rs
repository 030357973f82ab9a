//! `faultproxy`: see [`halfclose_tools::faultproxy::cli`].

fn main() -> std::process::ExitCode {
    halfclose_tools::faultproxy::cli::main()
}
