//! Error types: [`Error`] for operations, [`DecodeError`] for bytes that do not parse, [`EmitError`] for
//! values that cannot be written.

use std::fmt;

/// Why a buffer could not be decoded. Every variant says where (`offset`, in bytes from the start of the
/// buffer handed to the parser) and what was expected, so a bad kernel message can be diagnosed from the
/// error alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before a header or value that must be there.
    #[error("{what}: truncated at offset {offset}: need {expected} bytes, have {actual}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset of the header or value.
        offset: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// A length field is impossible (shorter than its own header, or longer than the data holding it).
    #[error("{what}: bad length at offset {offset}: length field {length}, room {room}")]
    BadLength {
        /// What carried the length.
        what: &'static str,
        /// Offset of the header.
        offset: usize,
        /// The length field.
        length: usize,
        /// Bytes actually available.
        room: usize,
    },
    /// A fixed-size attribute has the wrong size.
    #[error("attribute {what} at offset {offset}: expected {expected} bytes, got {actual}")]
    BadSize {
        /// The attribute (kernel name, e.g. `CTA_MARK`).
        what: &'static str,
        /// Offset of the attribute header.
        offset: usize,
        /// Expected value size.
        expected: usize,
        /// Actual value size.
        actual: usize,
    },
    /// A required attribute is absent.
    #[error("missing attribute {what}")]
    Missing {
        /// The attribute (kernel name).
        what: &'static str,
    },
    /// A value is out of its domain (for example an address family that is neither IPv4 nor IPv6).
    #[error("{what}: invalid value {value} at offset {offset}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Offset of the value.
        offset: usize,
        /// The offending value.
        value: u64,
    },
    /// A string attribute is not valid UTF-8.
    #[error("attribute {what} at offset {offset} is not UTF-8")]
    NotUtf8 {
        /// The attribute (kernel name).
        what: &'static str,
        /// Offset of the attribute header.
        offset: usize,
    },
}

/// Why a value could not be written (`emit`) or a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The buffer is shorter than the value's `buffer_len()`.
    #[error("buffer too short: need {needed} bytes, have {actual}")]
    BufferTooShort {
        /// Bytes the value needs.
        needed: usize,
        /// Bytes in the buffer.
        actual: usize,
    },
    /// A value is too long for a netlink attribute (whose length field is 16 bits).
    #[error("{what}: a value is too long for a netlink attribute")]
    TooLong {
        /// What was being written.
        what: &'static str,
    },
    /// The value cannot be expressed as a request (for example port filters without a protocol).
    #[error("cannot encode {what}: {reason}")]
    Invalid {
        /// What was being encoded.
        what: &'static str,
        /// Why it cannot be.
        reason: &'static str,
    },
}

impl EmitError {
    /// The error for an emit into `actual` bytes that stopped short: the buffer was too small when the
    /// value needs more, otherwise some attribute was too long.
    pub(crate) fn overflow(what: &'static str, needed: usize, actual: usize) -> Self {
        if needed > actual {
            EmitError::BufferTooShort { needed, actual }
        } else {
            EmitError::TooLong { what }
        }
    }
}

/// The kernel errno values the API names; anything else is [`Error::Kernel`].
mod errno {
    pub const ENOENT: i32 = libc::ENOENT;
    pub const EEXIST: i32 = libc::EEXIST;
    pub const EPERM: i32 = libc::EPERM;
    pub const EACCES: i32 = libc::EACCES;
    pub const EINVAL: i32 = libc::EINVAL;
    pub const EBUSY: i32 = libc::EBUSY;
    pub const ENOBUFS: i32 = libc::ENOBUFS;
}

/// An operation failed.
///
/// Kernel errnos map to typed kinds; [`Error::errno`] gives the raw value back so a command-line tool can
/// print the same text conntrack-tools prints (`std::io::Error::from_raw_os_error(e.errno()?)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The entry or expectation does not exist (`ENOENT`).
    #[error("not found: {}", Strerror(errno::ENOENT))]
    NotFound,
    /// The entry or expectation already exists (`EEXIST`).
    #[error("already exists: {}", Strerror(errno::EEXIST))]
    Exists,
    /// Not allowed (`EPERM` or `EACCES`; which one is kept).
    #[error("permission denied: {}", Strerror(*errno))]
    PermissionDenied {
        /// `EPERM` or `EACCES`.
        errno: i32,
    },
    /// The kernel rejected the request as malformed (`EINVAL`).
    #[error("invalid request: {}", Strerror(errno::EINVAL))]
    Invalid,
    /// The kernel refused a change it cannot make now (`EBUSY`), e.g. clearing a status bit that can only be set.
    #[error("busy: {}", Strerror(errno::EBUSY))]
    Busy,
    /// Messages were lost because a socket receive buffer overflowed (`ENOBUFS`). For an event socket this
    /// means events were dropped: the caller must resynchronise (dump the table again).
    #[error("receive buffer overrun, messages lost: {}", Strerror(errno::ENOBUFS))]
    Overrun,
    /// Any other kernel errno.
    #[error("kernel error: {}", Strerror(*errno))]
    Kernel {
        /// The positive errno value.
        errno: i32,
    },
    /// A system call failed outside the netlink protocol (socket, bind, send, recv).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A kernel message did not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A request could not be encoded (an attribute value longer than a netlink attribute can hold, a
    /// filter the kernel cannot express).
    #[error("{0}")]
    Emit(#[from] EmitError),
    /// The kernel answered with something the protocol does not allow here (wrong message type or sequence).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}

/// `strerror` text without `unsafe`: std's io::Error renders it, we strip the " (os error N)" suffix.
struct Strerror(i32);

impl fmt::Display for Strerror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&strerror(self.0))
    }
}

/// The C library's message for `errno` (e.g. `"No such file or directory"` for `ENOENT`).
pub fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Error {
    /// Maps a positive kernel errno to its typed kind.
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            errno::ENOENT => Error::NotFound,
            errno::EEXIST => Error::Exists,
            errno::EPERM | errno::EACCES => Error::PermissionDenied { errno },
            errno::EINVAL => Error::Invalid,
            errno::EBUSY => Error::Busy,
            errno::ENOBUFS => Error::Overrun,
            _ => Error::Kernel { errno },
        }
    }

    /// The error for the code of an `NLMSG_ERROR`/`NLMSG_DONE` message (the kernel writes `-errno`).
    /// Negation saturates: a corrupt message holding `i32::MIN` gives `Kernel { errno: i32::MAX }`
    /// instead of an arithmetic overflow.
    pub fn from_nl_code(code: i32) -> Self {
        Error::from_errno(code.saturating_neg())
    }

    /// The positive errno behind this error, when there is one (kernel answers and failed system calls).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::NotFound => Some(errno::ENOENT),
            Error::Exists => Some(errno::EEXIST),
            Error::PermissionDenied { errno } | Error::Kernel { errno } => Some(*errno),
            Error::Invalid => Some(errno::EINVAL),
            Error::Busy => Some(errno::EBUSY),
            Error::Overrun => Some(errno::ENOBUFS),
            Error::Io(e) => e.raw_os_error(),
            Error::Decode(_) | Error::Emit(_) | Error::Protocol(_) => None,
        }
    }

    /// Maps an I/O error from a netlink socket: `ENOBUFS` becomes [`Error::Overrun`].
    pub(crate) fn from_io(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(errno::ENOBUFS) => Error::Overrun,
            _ => Error::Io(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_round_trip() {
        for e in [
            libc::ENOENT,
            libc::EEXIST,
            libc::EPERM,
            libc::EACCES,
            libc::EINVAL,
            libc::EBUSY,
            libc::ENOBUFS,
            libc::EOPNOTSUPP,
        ] {
            assert_eq!(Error::from_errno(e).errno(), Some(e));
        }
        assert!(matches!(Error::from_errno(libc::ENOENT), Error::NotFound));
        assert!(matches!(Error::from_errno(libc::ENOBUFS), Error::Overrun));
        // netlink codes are negative errnos; a hostile i32::MIN must not overflow on negation
        assert!(matches!(
            Error::from_nl_code(-libc::ENOENT),
            Error::NotFound
        ));
        assert!(matches!(
            Error::from_nl_code(i32::MIN),
            Error::Kernel { errno: i32::MAX }
        ));
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
        assert!(
            Error::NotFound
                .to_string()
                .contains("No such file or directory")
        );
    }
}
