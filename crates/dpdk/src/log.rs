//! DPDK's own log lines (the EAL's, the drivers') handed to a callback, one line at a
//! time, so that the appliance writes them through its logger: with `--log-format json`
//! every line of its output is then JSON, DPDK's included.
//!
//! DPDK writes its log to a C `FILE`; [`redirect`] gives it the write end of a pipe
//! (line-buffered) and a thread reads the other end. Call it before [`crate::Eal::init`]
//! to catch the EAL's first lines too. DPDK only logs off the packet path (start-up,
//! configuration, errors), and the reader drains the pipe as it fills: a write blocking
//! on a full pipe would need 64 KiB of log lines faster than a thread can read them.

use std::io::{BufRead, BufReader};
use std::os::fd::FromRawFd;

use crate::error::{DpdkError, Result};

/// The error of a failed libc call, from `errno`.
fn os(call: &'static str) -> DpdkError {
    DpdkError::from_errno(
        call,
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}
use tandem_dpdk_sys as sys;

/// Sends DPDK's log lines to `sink` (from a thread of its own, named `dpdk-log`), for the
/// rest of the process.
///
/// # Errors
///
/// The pipe, the `FILE` or the thread could not be made, or DPDK refused the stream; DPDK
/// then logs to stderr as before.
pub fn redirect(sink: impl Fn(&str) + Send + 'static) -> Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os("pipe2"));
    }
    let [read_fd, write_fd] = fds;
    // SAFETY: `write_fd` is a descriptor just made and owned here; the FILE takes it over.
    let file = unsafe { libc::fdopen(write_fd, c"w".as_ptr()) };
    if file.is_null() {
        let e = os("fdopen");
        // SAFETY: both descriptors are ours and unused.
        unsafe {
            libc::close(read_fd);
            libc::close(write_fd);
        }
        return Err(e);
    }
    // SAFETY: `file` is a valid FILE; line buffering so that each line goes at once.
    unsafe { libc::setvbuf(file, std::ptr::null_mut(), libc::_IOLBF, 0) };
    // SAFETY: `read_fd` is ours; the File owns it from here.
    let reader = unsafe { std::fs::File::from_raw_fd(read_fd) };
    let spawned = std::thread::Builder::new()
        .name("dpdk-log".to_owned())
        .spawn(move || {
            let mut lines = BufReader::new(reader);
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    // The write end closed: nothing more can come.
                    Ok(0) => break,
                    Ok(_) => {
                        // Bytes that are not UTF-8 (a device name, a driver's dump) are
                        // shown replaced, never a reason to stop reading.
                        let text = String::from_utf8_lossy(&line);
                        let l = text.trim_end();
                        if !l.is_empty() {
                            sink(l);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
    if let Err(e) = spawned {
        // SAFETY: `file` is ours and DPDK has not seen it; closing it closes the write end.
        unsafe { libc::fclose(file) };
        return Err(DpdkError::from_errno(
            "spawn dpdk-log",
            e.raw_os_error().unwrap_or(libc::EAGAIN),
        ));
    }
    // SAFETY: `file` is a valid FILE that stays open for the rest of the process (DPDK
    // keeps the pointer).
    if unsafe { sys::rte_openlog_stream(file.cast()) } != 0 {
        let e = os("rte_openlog_stream");
        // SAFETY: DPDK refused it and keeps no pointer; the reader sees EOF and ends.
        unsafe { libc::fclose(file) };
        return Err(e);
    }
    Ok(())
}
