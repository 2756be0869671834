//! The few system calls the lab needs that std does not wrap: entering a named network namespace,
//! signalling a process by id, `poll(2)`, the file-descriptor limit, and two raw sockets for the
//! observers (an `AF_PACKET` capture socket and an rtnetlink address-event socket).
//!
//! This is the only module of the lab with `unsafe` code; every block says why it is sound.
#![allow(unsafe_code)]

use anyhow::{Context, Result, bail};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// Moves the calling thread into the network namespace bound at `/run/netns/NAME`.
///
/// Network namespaces are per thread: sockets the thread opens afterwards belong to that namespace and
/// keep belonging to it when other threads use them.
pub fn enter_netns(name: &str) -> Result<()> {
    let path = Path::new("/run/netns").join(name);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns only changes the calling thread's namespace membership; the fd is valid for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("setns({name})"));
    }
    Ok(())
}

/// The signals the lab sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Graceful stop.
    Term,
    /// Death without a chance to clean up.
    Kill,
    /// Freeze (used to make a multi-process kill atomic: stop all, then kill all).
    Stop,
}

/// Sends `sig` to the process `pid`. A process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    let signo = match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
        Signal::Stop => libc::SIGSTOP,
    };
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        bail!("pid {pid} out of range");
    };
    if pid <= 1 || pid == std::process::id() as libc::pid_t {
        bail!("refusing to signal pid {pid}");
    }
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a positive id we checked above.
    let rc = unsafe { libc::kill(pid, signo) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).with_context(|| format!("kill({pid}, {signo})"));
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit (the lab holds two sockets per connection).
pub fn raise_nofile_limit() -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(lim.rlim_cur)
}

/// Readiness of one descriptor after [`poll`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    /// Data (or EOF, or an error) to read.
    pub read: bool,
    /// Room to write.
    pub write: bool,
}

/// `poll(2)` over `fds` (`(fd, want_write)`); fills `ready` (same length). Returns the number ready.
/// An interrupted call counts as a timeout.
pub fn poll(fds: &[(RawFd, bool)], ready: &mut Vec<Ready>, timeout: Duration) -> Result<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, w)| libc::pollfd {
            fd,
            events: libc::POLLIN | if w { libc::POLLOUT } else { 0 },
            revents: 0,
        })
        .collect();
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: pfds is a valid array of pfds.len() pollfd structs that lives across the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    ready.clear();
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            ready.resize(fds.len(), Ready::default());
            return Ok(0);
        }
        return Err(e).context("poll");
    }
    ready.extend(pfds.iter().map(|p| Ready {
        read: p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0,
        write: p.revents & (libc::POLLOUT | libc::POLLERR) != 0,
    }));
    Ok(n as usize)
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> Result<bool> {
    let mut ready = Vec::with_capacity(1);
    poll(&[(fd, false)], &mut ready, timeout)?;
    Ok(ready.first().is_some_and(|r| r.read))
}

/// An `AF_PACKET` socket receiving every frame (both directions) of one interface of the calling
/// thread's namespace.
pub fn packet_socket(ifname: &str) -> Result<OwnedFd> {
    let ifindex = if_index(ifname)?;
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            proto.into(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value before we fill it in.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: the pointer and length describe the sockaddr_ll we own for the duration of the call.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("bind(AF_PACKET, {ifname})"));
    }
    Ok(owned)
}

/// An rtnetlink socket subscribed to IPv4 address events of the calling thread's namespace.
pub fn addr_event_socket() -> Result<OwnedFd> {
    netlink_listener(libc::NETLINK_ROUTE, libc::RTMGRP_IPV4_IFADDR as u32, None)
}

/// A ctnetlink socket subscribed to conntrack NEW events of the calling thread's namespace, with a
/// receive buffer of `rcvbuf` bytes (forced: a commit of 50,000 entries is a burst of 50,000 events).
pub fn ct_new_event_socket(rcvbuf: usize) -> Result<OwnedFd> {
    let group = 1u32 << (libc::NFNLGRP_CONNTRACK_NEW - 1);
    netlink_listener(libc::NETLINK_NETFILTER, group, Some(rcvbuf))
}

/// A non-blocking netlink socket of `protocol` bound to the multicast `groups`.
fn netlink_listener(protocol: libc::c_int, groups: u32, rcvbuf: Option<usize>) -> Result<OwnedFd> {
    let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, flags, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("socket(AF_NETLINK)");
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(size) = rcvbuf {
        let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: the option value is a c_int that lives across the call, with its exact size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("SO_RCVBUFFORCE");
        }
    }
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value before we fill it in.
    let mut snl: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    snl.nl_family = libc::AF_NETLINK as u16;
    snl.nl_groups = groups;
    // SAFETY: the pointer and length describe the sockaddr_nl we own for the duration of the call.
    let rc = unsafe {
        libc::bind(
            fd,
            (&snl as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("bind(AF_NETLINK)");
    }
    Ok(owned)
}

fn if_index(ifname: &str) -> Result<i32> {
    let c = std::ffi::CString::new(ifname).context("interface name with a NUL byte")?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("no interface {ifname}"));
    }
    i32::try_from(idx).context("interface index out of range")
}

/// Gives the calling thread a low real-time priority (SCHED_FIFO 1), so that an observer stamps what it
/// sees when it happens even on a machine loaded by builds. The lab's threads block in `poll(2)`, so they
/// never starve anything. Returns false where the kernel refuses (no CAP_SYS_NICE).
pub fn realtime_thread() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; param lives across the call.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// Receives up to `bufs.len()` datagrams from a non-blocking socket in one `recvmmsg(2)`; returns the
/// length of each (fewer than asked when the socket ran dry; none when it was empty). ENOBUFS (an overrun)
/// is returned as an error of that kind.
pub fn recv_many(fd: RawFd, bufs: &mut [Vec<u8>], lens: &mut Vec<usize>) -> io::Result<()> {
    lens.clear();
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: mmsghdr is plain old data; all-zero is a valid value before we fill it in.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            h
        })
        .collect();
    let n = loop {
        // SAFETY: hdrs points at hdrs.len() headers, each with one iovec into a buffer of `bufs`; all of
        // them outlive the call, and the kernel writes at most iov_len bytes into each.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(()),
            _ => return Err(e),
        }
    };
    lens.extend(hdrs[..n].iter().map(|h| h.msg_len as usize));
    Ok(())
}
