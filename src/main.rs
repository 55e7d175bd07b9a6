//! The `lab` command-line tool.

fn main() {
    std::process::exit(lab::cli::main());
}
