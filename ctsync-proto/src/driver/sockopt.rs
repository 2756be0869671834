//! The one socket option `rustix` does not wrap: `SO_NO_CHECK` (conntrackd's `Checksum off`).
#![allow(unsafe_code)]

use rustix::fd::{AsFd, AsRawFd};

/// Sets or clears `SO_NO_CHECK` (no UDP checksums on sent datagrams).
pub(crate) fn set_no_check(fd: &impl AsFd, on: bool) -> std::io::Result<()> {
    let v: libc::c_int = on.into();
    // SAFETY: `v` is a live c_int for the duration of the call and the length passed is its size; the
    // descriptor is borrowed from an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NO_CHECK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A real-time scheduling policy for [`set_scheduler`](super::set_scheduler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SchedPolicy {
    /// `SCHED_RR` (conntrackd's default).
    #[default]
    RoundRobin,
    /// `SCHED_FIFO`.
    Fifo,
}

/// `sched_setscheduler(0, policy, priority)` for the calling process; `None` takes the policy's highest
/// priority.
pub(crate) fn set_scheduler(policy: SchedPolicy, priority: Option<i32>) -> std::io::Result<()> {
    let p = match policy {
        SchedPolicy::RoundRobin => libc::SCHED_RR,
        SchedPolicy::Fifo => libc::SCHED_FIFO,
    };
    // SAFETY: sched_get_priority_max only reads its integer argument.
    let max = unsafe { libc::sched_get_priority_max(p) };
    let param = libc::sched_param {
        sched_priority: priority.unwrap_or(max),
    };
    // SAFETY: `param` is a live sched_param for the duration of the call; pid 0 is this process.
    let rc = unsafe { libc::sched_setscheduler(0, p, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
