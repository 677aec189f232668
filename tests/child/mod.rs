//! For test binaries that re-run themselves: a parent test starts one of the binary's ignored
//! tests as a child process, to kill it, let it exit without closing its store, or hold a
//! store open from another process.
//!
//! Each such test binary includes this module with `mod child;`.

use std::ffi::OsStr;
use std::process::Command;

/// This test binary, set to run only its ignored test `name`, with the environment variable
/// `env` set to `value` (how the child learns its directory). The caller sets up its stdio.
pub fn command(name: &str, env: &str, value: impl AsRef<OsStr>) -> std::io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, value);
    Ok(command)
}
