//! Errors from DPDK calls, and the one helper that turns DPDK's return conventions
//! (negative errno, or -1/NULL with `rte_errno`) into [`Result`] (after capsule).

use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use tandem_dpdk_sys as sys;

/// A failed DPDK call: which call, the errno it reported and DPDK's text for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {text} (errno {errno})")]
pub struct DpdkError {
    call: &'static str,
    errno: i32,
    text: String,
}

/// `Result` with [`DpdkError`].
pub type Result<T, E = DpdkError> = std::result::Result<T, E>;

impl DpdkError {
    /// An error for `call` with `errno`, described by `rte_strerror`.
    pub fn from_errno(call: &'static str, errno: i32) -> Self {
        Self {
            call,
            errno,
            text: strerror(errno),
        }
    }

    /// An error for `call` from the calling thread's `rte_errno`.
    pub fn from_rte_errno(call: &'static str) -> Self {
        Self::from_errno(call, rte_errno())
    }

    /// An error that Tandem itself detected before calling DPDK, with its own text.
    pub(crate) fn usage(call: &'static str, errno: i32, text: impl Into<String>) -> Self {
        Self {
            call,
            errno,
            text: text.into(),
        }
    }

    /// The DPDK function (or Tandem method) that failed.
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// The positive errno value (`libc::EINVAL`, ...).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// DPDK's description of the error (`rte_strerror`), or Tandem's own.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The calling thread's `rte_errno`.
pub fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int; valid on any thread, before or after EAL init.
    unsafe { sys::tandem_rte_errno() }
}

/// `rte_strerror(errno)`, copied out of DPDK's per-thread buffer.
fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a NUL-terminated string, either static or in a
    // thread-local buffer that stays valid until this thread calls it again; it is copied
    // at once.
    unsafe {
        let text = sys::rte_strerror(errno);
        if text.is_null() {
            format!("errno {errno}")
        } else {
            CStr::from_ptr(text).to_string_lossy().into_owned()
        }
    }
}

/// Turns a DPDK return value into a [`Result`]: the one place that knows DPDK's error
/// conventions.
pub(crate) trait ToResult: Sized {
    /// What a success carries.
    type Ok;
    /// `Ok` on success, else the error of `call`:
    /// - `c_int`: `>= 0` is success, a negative value is `-errno` (ethdev convention);
    /// - pointers: NULL is failure, the reason is in `rte_errno`.
    fn check(self, call: &'static str) -> Result<Self::Ok>;
}

impl ToResult for c_int {
    type Ok = c_int;
    fn check(self, call: &'static str) -> Result<c_int> {
        if self >= 0 {
            Ok(self)
        } else {
            Err(DpdkError::from_errno(call, -self))
        }
    }
}

impl<T> ToResult for *mut T {
    type Ok = NonNull<T>;
    fn check(self, call: &'static str) -> Result<NonNull<T>> {
        NonNull::new(self).ok_or_else(|| DpdkError::from_rte_errno(call))
    }
}

/// For the calls that return -1 and leave the reason in `rte_errno` (`rte_eal_init`,
/// `rte_eal_cleanup`): clears `rte_errno`, runs `f`, and reads `rte_errno` if it failed.
pub(crate) fn check_rte_errno(call: &'static str, f: impl FnOnce() -> c_int) -> Result<c_int> {
    // SAFETY: writes the calling thread's own thread-local rte_errno.
    unsafe { sys::tandem_rte_errno_set(0) };
    let rc = f();
    if rc >= 0 {
        return Ok(rc);
    }
    let errno = match rte_errno() {
        0 if rc < -1 => -rc,
        0 => libc::EIO,
        errno => errno,
    };
    Err(DpdkError::from_errno(call, errno))
}
