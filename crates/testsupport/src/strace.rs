//! Reading `strace` logs: which system calls of a run changed files. The
//! dry-run tests run `vusb -N` under `strace -f -e FILE_CHANGING_CALLS`
//! and require [`file_changes`] of the log to be empty.

/// The `-e` expression for the file-changing system calls: opening for
/// writing or creating, `mkdir`, `unlink`, `rename`, `truncate`, links,
/// `chmod`, and `flock` (a dry run takes no lock).
pub const FILE_CHANGING_CALLS: &str = "trace=open,openat,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,renameat2,truncate,ftruncate,symlink,symlinkat,link,linkat,chmod,fchmod,fchmodat,flock";

/// The lines of an strace log (traced with [`FILE_CHANGING_CALLS`]) that
/// changed something: opens for writing or creating, and the other calls
/// when they succeeded. `/dev/null` and the terminal aside.
pub fn file_changes(strace_log: &str) -> Vec<String> {
    strace_log
        .lines()
        .filter(|l| !l.contains("/dev/null") && !l.contains("/dev/tty"))
        .filter(|l| {
            if l.contains("open(") || l.contains("openat(") {
                ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|f| l.contains(f))
            } else {
                !l.contains("= -1 ")
            }
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changing_calls_count() {
        let log = "\
123 openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY|O_CLOEXEC) = 3
123 openat(AT_FDCWD, \"/var/lib/vusb/x\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 4
123 openat(AT_FDCWD, \"/dev/null\", O_RDWR) = 5
123 mkdir(\"/var/lib/vusb/locks\", 0755) = -1 EEXIST (File exists)
123 unlink(\"/tmp/y\") = 0
";
        assert_eq!(
            file_changes(log),
            [
                "123 openat(AT_FDCWD, \"/var/lib/vusb/x\", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 4",
                "123 unlink(\"/tmp/y\") = 0",
            ]
        );
    }
}
