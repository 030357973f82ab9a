//! The half-close echo benchmark, the README's first command:
//!
//! cargo run --release --example halfclosed
//!
//! The same program as `cargo run --release -p halfclose-tools --bin
//! halfclosed`; it lives in `tools/src/halfclosed/` (`--help` lists its
//! options).

fn main() -> std::process::ExitCode {
    halfclose_tools::halfclosed::main()
}
