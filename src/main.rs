//! The `lab` command-line tool.

fn main() {
    // Output piped into `head` and closed early ends the process quietly, like other Unix tools,
    // instead of a panic on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(lab::cli::main());
}
