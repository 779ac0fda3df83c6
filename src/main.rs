//! The `signet` binary: parse the command line, hand over to [`signet::cli`].
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    signet::cli::Cli::parse().run()
}
