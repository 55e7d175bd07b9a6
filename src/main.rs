//! The `lab` command-line tool.

fn main() {
    // Output piped into `head` and closed early ends the process quietly, like other Unix tools,
    // instead of a panic on the failed write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Mesa's Vulkan drivers complain on stderr when XDG_RUNTIME_DIR is unset (as under cron, Slurm
    // or a container) each time wgpu lists adapters; give them a private one.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join(format!("lab-runtime-{}", unsafe { libc::getuid() }));
        if std::fs::create_dir_all(&dir).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
    std::process::exit(lab::cli::main());
}
