//! Lcores (DPDK's pinned worker threads), launching closures on them, and the TSC clock.
//!
//! The main lcore (the thread that called [`Eal::init`](crate::Eal::init)) launches work
//! on the worker lcores with [`launch_on`] and collects it with [`wait`] or [`wait_all`].

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use tandem_dpdk_sys as sys;

use crate::eal::ensure_ready;
use crate::error::{DpdkError, Result, ToResult};

/// What [`wait`] returns for a closure that panicked: the panic is caught on the lcore
/// (unwinding into DPDK's C frames is not allowed) and reported as this value.
pub const LAUNCH_PANICKED: i32 = i32::MIN;

/// The closure type [`launch_on`] hands to the trampoline.
type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// The calling thread's lcore id, or `None` on a thread that is not an EAL lcore.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local variable; valid on any thread.
    let id = unsafe { sys::tandem_rte_lcore_id() };
    (id != sys::TANDEM_LCORE_ID_ANY).then_some(id)
}

/// The main lcore's id.
pub fn main_lcore() -> u32 {
    // SAFETY: reads the EAL configuration, a static that exists before init as well.
    unsafe { sys::rte_get_main_lcore() }
}

/// The number of enabled lcores, main included.
pub fn lcore_count() -> u32 {
    // SAFETY: as for main_lcore.
    unsafe { sys::rte_lcore_count() }
}

/// The enabled worker lcores (all but the main one), in increasing order.
pub fn worker_lcores() -> Vec<u32> {
    let mut out = Vec::new();
    // `rte_get_next_lcore(-1, ...)` starts the walk: the argument is unsigned.
    let mut id = u32::MAX;
    loop {
        // SAFETY: walks the EAL's lcore table; ids past RTE_MAX_LCORE end the walk.
        id = unsafe { sys::rte_get_next_lcore(id, 1, 0) };
        if id >= sys::TANDEM_RTE_MAX_LCORE {
            return out;
        }
        out.push(id);
    }
}

/// The NUMA socket of the calling lcore (0 on a thread that is not an lcore).
pub fn socket_id() -> u32 {
    // SAFETY: reads thread-local EAL state; valid on any thread.
    unsafe { sys::rte_socket_id() }
}

/// The time-stamp counter, for timing bursts (`rte_rdtsc`: no serialisation).
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects; this is
        // what rte_rdtsc compiles to, without the call.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the cycle counter; no memory effects.
        unsafe { sys::tandem_rte_rdtsc() }
    }
}

/// Ticks of [`tsc`] per second, measured by the EAL at init (0 before).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at init (0 before).
    unsafe { sys::rte_get_tsc_hz() }
}

/// Busy-waits `us` microseconds (`rte_delay_us_block`).
pub fn delay_us(us: u32) {
    // SAFETY: a calibrated spin loop; no memory effects.
    unsafe { sys::rte_delay_us_block(us) }
}

/// The C entry point DPDK runs on the worker lcore: rebuilds the boxed closure and runs
/// it, catching panics.
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by launch_on for exactly this launch; DPDK runs
    // the function once, so the box is reclaimed once.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    catch_unwind(AssertUnwindSafe(move || (*job)())).unwrap_or(LAUNCH_PANICKED)
}

/// `Ok` when the calling thread is the main lcore, which alone may launch and wait.
fn ensure_main(call: &'static str) -> Result<()> {
    ensure_ready(call)?;
    if lcore_id() == Some(main_lcore()) {
        Ok(())
    } else {
        Err(DpdkError::usage(
            call,
            libc::EPERM,
            "only the main lcore may launch or wait for lcores",
        ))
    }
}

/// `Ok` when `lcore` is an enabled worker lcore (not the main one).
fn ensure_worker(call: &'static str, lcore: u32) -> Result<()> {
    // SAFETY: a bounds-checked lookup in the EAL's lcore table; any id is accepted.
    let enabled = unsafe { sys::rte_lcore_is_enabled(lcore) } != 0;
    if enabled && lcore != main_lcore() {
        Ok(())
    } else {
        Err(DpdkError::usage(
            call,
            libc::EINVAL,
            format!("lcore {lcore} is not an enabled worker lcore"),
        ))
    }
}

/// Runs `f` on the worker lcore `lcore` (`rte_eal_remote_launch`); its return value is
/// collected by [`wait`]. Must be called on the main lcore.
///
/// Fails with `EBUSY` if that lcore is still running an earlier closure (wait for it
/// first), `EINVAL` for the main lcore or one that is not enabled, `EPERM` off the main
/// lcore. A closure that panics returns [`LAUNCH_PANICKED`].
pub fn launch_on<F>(lcore: u32, f: F) -> Result<()>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    const CALL: &str = "rte_eal_remote_launch";
    ensure_main(CALL)?;
    ensure_worker(CALL, lcore)?;
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job).cast::<c_void>();
    // SAFETY: the trampoline matches lcore_function_t and takes ownership of `arg`;
    // `F: Send + 'static` makes it sound to run on another thread for any duration.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if let Err(e) = rc.check(CALL) {
        // SAFETY: DPDK refused the launch, so the trampoline will never run: the box is
        // still ours.
        drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
        return Err(e);
    }
    Ok(())
}

/// Waits for the closure launched on `lcore` and returns its value (0 if nothing was
/// launched). Must be called on the main lcore.
pub fn wait(lcore: u32) -> Result<i32> {
    const CALL: &str = "rte_eal_wait_lcore";
    ensure_main(CALL)?;
    ensure_worker(CALL, lcore)?;
    // SAFETY: called on the main lcore, for an enabled worker lcore (the function indexes
    // the lcore table without a bounds check).
    Ok(unsafe { sys::rte_eal_wait_lcore(lcore) })
}

/// Waits for every worker lcore to finish its closure (`rte_eal_mp_wait_lcore`). Does
/// nothing off the main lcore or without an EAL.
pub fn wait_all() {
    if ensure_main("rte_eal_mp_wait_lcore").is_ok() {
        // SAFETY: called on the main lcore of an initialised EAL.
        unsafe { sys::rte_eal_mp_wait_lcore() }
    }
}
