//! Giving freed heap memory back to the system. glibc keeps memory freed in the middle of its
//! heap until told otherwise, so parsing a 10,000-token list or reading a large state file
//! would leave the daemon megabytes larger than what it holds. The daemon keeps large buffers
//! out of the heap ([`keep_large_buffers_apart`], at start) and trims the heap when it goes
//! back to waiting ([`release_free`]: the scheduler before each sleep, the watcher after a
//! reload).

/// Returns the heap's free pages to the system (glibc's `malloc_trim`); elsewhere, nothing.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes the allocator's own locks and only releases pages of free
    // chunks; it is sound to call at any time, with any padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Serves every allocation of 128 KiB or more (a response body, a state file's text, a grown
/// list) with its own mapping, returned to the system when freed. glibc otherwise raises that
/// threshold to the largest block freed so far, after which such buffers stay in the heap and
/// leave holes in it.
pub fn keep_large_buffers_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets the allocator's parameters; called before the daemon's
    // threads start, with a parameter and value glibc documents.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
