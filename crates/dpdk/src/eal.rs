//! The Environment Abstraction Layer: initialised once per process, before anything
//! else in this crate.

use std::ffi::{c_char, CStr, CString, OsStr};
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use tandem_dpdk_sys as sys;

use crate::error::{check_rte_errno, DpdkError, Result};

/// The EAL has not been initialised.
const UNINIT: u8 = 0;
/// `rte_eal_init` is running.
const INITIALISING: u8 = 1;
/// The EAL is up.
const READY: u8 = 2;
/// `rte_eal_cleanup` has run: DPDK cannot be used again in this process.
const CLEANED: u8 = 3;

/// Where this process stands with the EAL.
static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// The program name passed to DPDK as `argv[0]`.
const ARGV0: &str = "tandem";

/// Proof that the EAL is initialised, held by the thread that initialised it (the main
/// lcore).
///
/// DPDK allows one `rte_eal_init` per process, and none after `rte_eal_cleanup`;
/// [`Eal::init`] enforces that.
///
/// # Why dropping it does not clean up
///
/// `rte_eal_cleanup` unmaps DPDK's memory: every mempool, mbuf and ring with it. The
/// handles of this crate ([`Mbuf`](crate::Mbuf), [`Mempool`](crate::Mempool), rings,
/// queues) do not borrow the `Eal` — workers need `'static` handles — so a cleanup run
/// from `Drop` could leave safe code holding dangling pointers. Dropping an `Eal` does
/// nothing (nor does it wait for the worker lcores, which may poll until the process
/// ends): DPDK stays up until the process exits, which is what a DPDK primary process
/// needs anyway (the OS reclaims its memory). A program that wants DPDK's own cleanup
/// calls the `unsafe` [`Eal::cleanup`] last, after stopping its workers.
///
/// `Eal` is neither `Send` nor `Sync`: launching and waiting for lcores must happen on
/// the main lcore, the thread that called [`Eal::init`].
#[derive(Debug)]
pub struct Eal {
    /// Keeps `Eal` on the main lcore's thread.
    _main_thread: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises DPDK with `args` (without the program name: `argv[0]` is `"tandem"`),
    /// on the calling thread, which becomes the main lcore.
    ///
    /// Example arguments for a test without hugepages or root-only devices:
    /// `["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", "t1",
    /// "--vdev", "net_ring0"]`. (`--in-memory` is refused together with `--no-huge`.)
    ///
    /// Fails with `EALREADY` when the EAL was already initialised (or cleaned up) in this
    /// process, `EINVAL` for an argument with a NUL byte, and otherwise with the reason
    /// `rte_eal_init` leaves in `rte_errno`.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        const CALL: &str = "rte_eal_init";
        if STATE
            .compare_exchange(UNINIT, INITIALISING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(DpdkError::usage(
                CALL,
                libc::EALREADY,
                "the EAL can be initialised only once per process",
            ));
        }
        let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 2);
        for arg in std::iter::once(ARGV0).chain(args.iter().map(AsRef::as_ref)) {
            let Ok(arg) = CString::new(arg) else {
                STATE.store(UNINIT, Ordering::Release);
                return Err(DpdkError::usage(
                    CALL,
                    libc::EINVAL,
                    format!("argument {arg:?} contains a NUL byte"),
                ));
            };
            // DPDK may keep pointers into argv (and getopt permutes it): the strings
            // live as long as the process.
            argv.push(arg.into_raw());
        }
        let argc = argv.len() as i32;
        argv.push(std::ptr::null_mut());
        let argv = argv.leak();
        let rc = check_rte_errno(CALL, || {
            // SAFETY: argv holds argc valid NUL-terminated strings and a final NULL, all
            // leaked so that they outlive the EAL; STATE guarantees one call per process.
            unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) }
        });
        match rc {
            Ok(_) => {
                STATE.store(READY, Ordering::Release);
                Ok(Eal {
                    _main_thread: PhantomData,
                })
            }
            Err(e) => {
                // DPDK itself refuses a second attempt if the first went too far.
                STATE.store(UNINIT, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Whether the EAL is initialised (and not cleaned up) in this process.
    pub fn is_ready() -> bool {
        STATE.load(Ordering::Acquire) == READY
    }

    /// DPDK's runtime directory for this process (`/var/run/dpdk/<file-prefix>` as root),
    /// which holds its multi-process socket and memory maps. DPDK leaves it behind at
    /// exit; remove it after [`cleanup`](Self::cleanup) if the prefix is not reused.
    pub fn runtime_dir(&self) -> PathBuf {
        // SAFETY: returns a pointer to a NUL-terminated string in the EAL's static
        // configuration, valid while the EAL is up (it is: we hold an Eal); copied at once.
        let dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) };
        PathBuf::from(OsStr::from_bytes(dir.to_bytes()))
    }

    /// Waits for every worker lcore, then releases DPDK's resources
    /// (`rte_eal_cleanup`). DPDK cannot be initialised again in this process.
    ///
    /// # Safety
    ///
    /// `rte_eal_cleanup` unmaps the memory of every mempool, mbuf and ring. The caller
    /// guarantees that no [`Mbuf`](crate::Mbuf), [`Mempool`](crate::Mempool),
    /// [`Burst`](crate::Burst) of mbufs, ring end, port or queue handle is used, or
    /// dropped, after this call (drop them before, or leak them with
    /// [`std::mem::forget`]), and that no other thread is using DPDK.
    pub unsafe fn cleanup(self) -> Result<()> {
        crate::lcore::wait_all();
        STATE.store(CLEANED, Ordering::Release);
        check_rte_errno("rte_eal_cleanup", || {
            // SAFETY: the caller guarantees that nothing uses DPDK memory any more, and
            // all worker lcores have returned.
            unsafe { sys::rte_eal_cleanup() }
        })
        .map(drop)
    }
}

/// `Ok` when the EAL is up; the check the constructors of this crate make.
pub(crate) fn ensure_ready(call: &'static str) -> Result<()> {
    if Eal::is_ready() {
        Ok(())
    } else {
        Err(DpdkError::usage(
            call,
            libc::ENODEV,
            "the EAL is not initialised (call Eal::init first)",
        ))
    }
}
