//! DPDK telemetry commands (`rte_telemetry_register_cmd`): what `dpdk-telemetry.py` users
//! query on the socket under the EAL's runtime directory.
//!
//! DPDK calls a command's callback on its telemetry thread with no user pointer, so the
//! handlers live in a registry, and one trampoline finds them by command name. A handler
//! returns a flat dictionary of numbers and strings.

use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tandem_dpdk_sys as sys;

/// A value in a command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An unsigned number.
    U64(u64),
    /// A string (cut to DPDK's 127 bytes).
    Str(String),
}

/// A command's handler: its parameters (after the command, may be empty) to its answer.
/// DPDK 22.11 takes only `[A-Za-z0-9_/]` in names: other characters become `_`.
pub type Handler = Arc<dyn Fn(&str) -> Vec<(String, Value)> + Send + Sync>;

type Registry = Mutex<Vec<(String, Handler)>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers `cmd` (it must start with `/`) with its help text.
///
/// # Errors
///
/// DPDK refused it (a bad name, a duplicate, too many commands), with its return code;
/// or the name or help holds a NUL byte.
pub fn register(cmd: &str, help: &str, handler: Handler) -> Result<(), i32> {
    let c_cmd = CString::new(cmd).map_err(|_| -libc_einval())?;
    let c_help = CString::new(help).map_err(|_| -libc_einval())?;
    {
        let mut r = registry().lock().unwrap_or_else(PoisonError::into_inner);
        r.retain(|(c, _)| c != cmd);
        r.push((cmd.to_owned(), handler));
    }
    // SAFETY: DPDK copies neither string: they must live for the process, so they are
    // leaked on purpose (a handful of short strings, once).
    let rc = unsafe {
        sys::rte_telemetry_register_cmd(c_cmd.into_raw(), Some(trampoline), c_help.into_raw())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(rc)
    }
}

fn libc_einval() -> i32 {
    22
}

extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -1;
    }
    // SAFETY: DPDK passes NUL-terminated strings that live for the call.
    let cmd = unsafe { CStr::from_ptr(cmd) }.to_string_lossy();
    let params = if params.is_null() {
        String::new()
    } else {
        // SAFETY: as above.
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .into_owned()
    };
    // The handler runs outside the lock (a panicking one poisons nothing), and a panic
    // stops here, not at the C boundary.
    let handler = {
        let r = registry().lock().unwrap_or_else(PoisonError::into_inner);
        match r.iter().find(|(c, _)| *c == cmd) {
            Some((_, h)) => h.clone(),
            None => return -1,
        }
    };
    let Ok(answer) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&params)))
    else {
        return -1;
    };
    // SAFETY: `d` is the container DPDK handed us for this call.
    unsafe {
        sys::rte_tel_data_start_dict(d);
        for (name, v) in answer.iter().take(sys::RTE_TEL_MAX_DICT_ENTRIES as usize) {
            let Ok(n) = CString::new(key(cut(name, 63))) else {
                continue;
            };
            match v {
                Value::U64(x) => {
                    sys::rte_tel_data_add_dict_u64(d, n.as_ptr(), *x);
                }
                Value::Str(s) => {
                    if let Ok(s) = CString::new(cut(s, sys::RTE_TEL_MAX_STRING_LEN as usize - 1)) {
                        sys::rte_tel_data_add_dict_string(d, n.as_ptr(), s.as_ptr());
                    }
                }
            }
        }
    }
    0
}

/// `name` with every character DPDK refuses in a dictionary name made `_`.
fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '/' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_acceptable_to_dpdk_and_cut_on_a_boundary() {
        assert_eq!(key("drop/no_flow"), "drop/no_flow");
        assert_eq!(key("lab/web-1.x"), "lab/web_1_x");
        assert_eq!(cut("abcé", 4), "abc");
        assert_eq!(cut("abc", 10), "abc");
    }
}
