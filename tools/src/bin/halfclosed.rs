//! `halfclosed`: see [`halfclose_tools::halfclosed`].

fn main() -> std::process::ExitCode {
    halfclose_tools::halfclosed::main()
}
