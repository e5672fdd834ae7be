//! The `davy` binary: parse arguments, run the command, exit with its code.

use clap::Parser;

fn main() {
    let cli = davy::cli::Cli::parse();
    match davy::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
