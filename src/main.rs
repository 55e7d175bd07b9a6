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
    keep_freed_memory();
    std::process::exit(lab::cli::main());
}

/// Training allocates and frees the same large tensor buffers every step. glibc's defaults serve
/// each buffer over 128 KiB-32 MiB with a fresh mmap and give it back on free (and trim the heap
/// top above 128 KiB), so every step page-faults and zeroes its activations anew. Keeping freed
/// memory in the heap for reuse made `lab bench` 16-46% faster on model S and 20-24% on M (2 cores,
/// measured back to back); the cost is that a process keeps its peak heap until it exits.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20); // glibc's maximum on 64-bit
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
