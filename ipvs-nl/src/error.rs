//! Errors: [`DecodeError`] for malformed bytes, [`Error`] for everything an operation can return.

/// A message or attribute that cannot be decoded. Never produced by unknown attributes, which are skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header or fixed-size value needs.
    #[error("{what}: truncated at offset {offset}: need {expected} bytes, have {actual}")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the structure inside its buffer.
        offset: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// A length field that disagrees with the buffer.
    #[error(
        "{what}: length field {length} invalid at offset {offset} (buffer has {available} bytes)"
    )]
    BadLength {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the structure.
        offset: usize,
        /// The length it claims.
        length: usize,
        /// The bytes actually there.
        available: usize,
    },
    /// An attribute whose payload has the wrong size for its type.
    #[error("attribute {what}: payload of {actual} bytes, expected {expected}")]
    AttrSize {
        /// The attribute's name.
        what: &'static str,
        /// Expected payload size (the smallest accepted one when several are).
        expected: usize,
        /// Actual payload size.
        actual: usize,
    },
    /// A mandatory attribute is absent.
    #[error("missing attribute {what}")]
    Missing {
        /// The attribute's name.
        what: &'static str,
    },
    /// A value outside its domain (e.g. an unknown address family for an address).
    #[error("{what}: invalid value {value}")]
    Invalid {
        /// What was being decoded.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A reply of an unexpected netlink or genetlink type.
    #[error("unexpected message type {kind} (cmd {cmd})")]
    UnexpectedMessage {
        /// The netlink message type.
        kind: u16,
        /// The genetlink command (0 when absent).
        cmd: u8,
    },
}

/// The error type of every `ipvs-nl` operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket error.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel has no "IPVS" generic-netlink family (module `ip_vs` not loaded or not built).
    #[error("the kernel has no IPVS generic netlink family (is ip_vs loaded?)")]
    FamilyNotFound,
    /// `EEXIST`: the service or destination already exists.
    #[error("already exists")]
    Exists,
    /// `ESRCH`: no such service.
    #[error("no such service")]
    NoSuchService,
    /// `ENOENT`: no such destination, or (when adding a service) no such scheduler or persistence engine.
    #[error("not found (no such destination, scheduler or persistence engine)")]
    NotFound,
    /// `EPERM`/`EACCES`: needs CAP_NET_ADMIN.
    #[error("permission denied")]
    PermissionDenied,
    /// `EBUSY`: e.g. the sync daemon is already running.
    #[error("busy")]
    Busy,
    /// `EINVAL`: the kernel rejected a parameter.
    #[error("invalid argument")]
    Invalid,
    /// `ENOBUFS`: the socket's receive buffer overflowed and replies were lost.
    #[error("netlink receive buffer overrun")]
    Overrun,
    /// `ENOMEM`.
    #[error("out of memory")]
    NoMemory,
    /// Any other kernel errno.
    #[error("kernel error {0}")]
    Kernel(i32),
    /// A reply that cannot be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl Error {
    /// Maps a positive errno from the kernel to its typed kind.
    pub fn from_errno(errno: i32) -> Error {
        match errno {
            libc::EEXIST => Error::Exists,
            libc::ESRCH => Error::NoSuchService,
            libc::ENOENT => Error::NotFound,
            libc::EPERM | libc::EACCES => Error::PermissionDenied,
            libc::EBUSY => Error::Busy,
            libc::EINVAL => Error::Invalid,
            libc::ENOBUFS => Error::Overrun,
            libc::ENOMEM => Error::NoMemory,
            e => Error::Kernel(e),
        }
    }

    /// The errno this error stands for, when it came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        Some(match self {
            Error::Exists => libc::EEXIST,
            Error::NoSuchService => libc::ESRCH,
            Error::NotFound => libc::ENOENT,
            Error::PermissionDenied => libc::EPERM,
            Error::Busy => libc::EBUSY,
            Error::Invalid => libc::EINVAL,
            Error::Overrun => libc::ENOBUFS,
            Error::NoMemory => libc::ENOMEM,
            Error::Kernel(e) => *e,
            Error::Io(e) => return e.raw_os_error(),
            Error::FamilyNotFound | Error::Decode(_) => return None,
        })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
