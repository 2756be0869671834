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
