//! Who may use the management socket (issue #14): root, or a member of the profile's
//! `management.group`, judged by the credentials the kernel recorded when the peer
//! connected (`SO_PEERCRED`, and `SO_PEERGROUPS` for its supplementary groups), not by
//! anything the peer says.
//!
//! The file mode already keeps others out (0600, or 0660 with the group); this check
//! holds when the mode does not: a socket made reachable by hand, bind-mounted into a
//! container, or a process with `CAP_DAC_OVERRIDE` that is not root.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// A connected peer's credentials, as the kernel recorded them at `connect`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Its process id (for the log; it may have exited since).
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
    /// Its supplementary groups (empty where the kernel cannot say, before Linux 4.13).
    pub groups: Vec<u32>,
}

/// Who may use the socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The group allowed besides root: its name and id. `None`: root only.
    pub group: Option<(String, u32)>,
}

impl Access {
    /// Root, and `group` when given, looked up on this host.
    ///
    /// # Errors
    ///
    /// The group does not exist here, or the lookup failed; the message names the
    /// profile field.
    pub fn resolve(group: Option<&str>) -> Result<Access, String> {
        let Some(name) = group else {
            return Ok(Access::default());
        };
        match group_id(name) {
            Ok(Some(gid)) => Ok(Access {
                group: Some((name.to_owned(), gid)),
            }),
            Ok(None) => Err(format!(
                "management.group: no group `{name}` on this host (allowed: an existing group, \
                 or leave it out for root only)"
            )),
            Err(e) => Err(format!(
                "management.group: cannot look group `{name}` up: {e}"
            )),
        }
    }

    /// Whether `peer` may use the socket: root, or in the group as its primary or a
    /// supplementary group.
    pub fn allows(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || self
                .group
                .as_ref()
                .is_some_and(|(_, g)| peer.gid == *g || peer.groups.contains(g))
    }

    /// The group's id, if one is allowed.
    pub fn gid(&self) -> Option<u32> {
        self.group.as_ref().map(|(_, g)| *g)
    }
}

/// The credentials of the process at the other end of `conn`.
///
/// # Errors
///
/// The kernel would not say (not a connected Unix socket).
pub fn peer_of(conn: &UnixStream) -> io::Result<Peer> {
    let fd = conn.as_raw_fd();
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = socklen(size_of::<libc::ucred>());
    // SAFETY: `fd` is the open socket `conn` owns; `cred` and `len` are live, writable
    // and `len` gives `cred`'s size, so the kernel writes within it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len != socklen(size_of::<libc::ucred>()) {
        return Err(io::Error::other(format!(
            "SO_PEERCRED gave {len} bytes, not a ucred"
        )));
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
        groups: peer_groups(fd)?,
    })
}

/// The peer's supplementary groups (`SO_PEERGROUPS`, Linux 4.13); none where the kernel
/// does not know the option.
fn peer_groups(fd: libc::c_int) -> io::Result<Vec<u32>> {
    // Linux allows 65536 groups; start with room for the usual few.
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    for _ in 0..2 {
        let mut len = socklen(groups.len() * size_of::<libc::gid_t>());
        // SAFETY: `fd` is an open socket; `groups` is live and writable for `len` bytes,
        // which the kernel does not write past (it reports ERANGE and the size needed).
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = usize::try_from(len).unwrap_or(usize::MAX) / size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOPROTOOPT) => return Ok(Vec::new()),
            Some(libc::ERANGE) if n > groups.len() && n <= 65_536 => groups.resize(n, 0),
            _ => return Err(e),
        }
    }
    Err(io::Error::other(
        "SO_PEERGROUPS: the group list kept growing",
    ))
}

/// The id of group `name` on this host (`getgrnam_r`: /etc/group, or whatever NSS
/// serves); `None` when there is no such group.
///
/// # Errors
///
/// The lookup failed (not: the group does not exist).
pub fn group_id(name: &str) -> io::Result<Option<u32>> {
    let cname = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the group name"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        let mut group = MaybeUninit::<libc::group>::uninit();
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `cname` is NUL-terminated; `group`, `buf` (of the length given) and
        // `found` are live and writable for the call; nothing is read from `group` unless
        // `found` points at it.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                group.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if found.is_null() => return Ok(None),
            // SAFETY: `found` is not null, so getgrnam_r filled `group` (it points at it).
            0 => return Ok(Some(unsafe { group.assume_init_ref() }.gr_gid)),
            libc::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 2, 0),
            // Some NSS modules report "no such group" this way (getgrnam_r(3)).
            libc::ENOENT | libc::ESRCH => return Ok(None),
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// This process's effective user id.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1234,
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_is_allowed_and_others_only_through_the_group() {
        let root_only = Access::default();
        assert!(root_only.allows(&peer(0, 0, &[])));
        assert!(
            root_only.allows(&peer(0, 100, &[])),
            "root whatever its group"
        );
        assert!(
            !root_only.allows(&peer(1000, 1000, &[0])),
            "gid 0 is not root"
        );
        assert!(!root_only.allows(&peer(65534, 65534, &[])));
        let ops = Access {
            group: Some(("ops".into(), 600)),
        };
        assert!(ops.allows(&peer(0, 0, &[])));
        assert!(ops.allows(&peer(1000, 600, &[])), "primary group");
        assert!(
            ops.allows(&peer(1000, 1000, &[27, 600])),
            "supplementary group"
        );
        assert!(!ops.allows(&peer(1000, 1000, &[27, 601])));
        assert!(!ops.allows(&peer(65534, 65534, &[])));
    }

    #[test]
    fn the_peer_of_a_socket_pair_is_this_process() {
        let (a, _b) = UnixStream::pair().expect("pair");
        let p = peer_of(&a).expect("credentials");
        assert_eq!(p.pid, i32::try_from(std::process::id()).expect("pid"));
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        // Uid: real effective saved fs; Gid: likewise; Groups: the supplementary ones.
        assert_eq!(Some(p.uid.to_string()), field("Uid:").get(1).cloned());
        assert_eq!(Some(p.gid.to_string()), field("Gid:").get(1).cloned());
        let groups: Vec<String> = p.groups.iter().map(u32::to_string).collect();
        assert_eq!(groups, field("Groups:"));
    }

    #[test]
    fn groups_resolve_by_name_and_an_unknown_one_is_a_clear_error() {
        assert_eq!(group_id("root").expect("lookup"), Some(0));
        assert_eq!(group_id("no-such-group-tandem").expect("lookup"), None);
        assert_eq!(
            Access::resolve(Some("root")),
            Ok(Access {
                group: Some(("root".into(), 0))
            })
        );
        assert_eq!(Access::resolve(None), Ok(Access::default()));
        let e = Access::resolve(Some("no-such-group-tandem")).expect_err("unknown");
        assert!(
            e.starts_with("management.group: no group `no-such-group-tandem`"),
            "{e}"
        );
    }
}
