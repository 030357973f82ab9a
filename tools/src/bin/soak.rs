//! `soak`: see [`halfclose_tools::soak`].

fn main() -> std::process::ExitCode {
    halfclose_tools::soak::main()
}
