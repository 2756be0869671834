//! Errors: [`DecodeError`] for bytes that do not parse, [`EmitError`] for values that cannot be written,
//! [`Error`] for everything an operation can return.

/// A message or attribute that cannot be decoded. Never produced by an unknown attribute, which is kept
/// raw ([`RawAttr`](crate::RawAttr)). Offsets count bytes from the start of the buffer handed to the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a header or fixed-size value needs.
    #[error("{what}: truncated at offset {offset}: need {expected} bytes, have {actual}")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
        /// Offset of the structure.
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
    #[error("attribute {what} at offset {offset}: payload of {actual} bytes, expected {expected}")]
    AttrSize {
        /// The attribute's kernel name.
        what: &'static str,
        /// Offset of the attribute header.
        offset: usize,
        /// Expected payload size (the smallest accepted one when several are).
        expected: usize,
        /// Actual payload size.
        actual: usize,
    },
    /// A mandatory attribute is absent.
    #[error("missing attribute {what}")]
    Missing {
        /// The attribute's kernel name.
        what: &'static str,
    },
    /// A value outside its domain (e.g. an address family that is neither IPv4 nor IPv6).
    #[error("{what} at offset {offset}: invalid value {value}")]
    Invalid {
        /// What was being decoded.
        what: &'static str,
        /// Offset of the attribute holding it.
        offset: usize,
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

/// A value that cannot be written: the buffer is too short, or the value has no encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The output buffer is shorter than `buffer_len()`.
    #[error("{what}: buffer too short: need {needed} bytes, have {actual}")]
    BufferTooShort {
        /// The value being written.
        what: &'static str,
        /// Bytes needed (`buffer_len()`).
        needed: usize,
        /// Bytes available.
        actual: usize,
    },
    /// An attribute longer than a netlink attribute header can describe (65,535 bytes with its header).
    #[error("{what}: {length} bytes do not fit in one netlink attribute")]
    TooLong {
        /// The attribute.
        what: &'static str,
        /// Its length, header included.
        length: usize,
    },
    /// A value that has no encoding, e.g. a string with a NUL byte inside (the kernel reads C strings,
    /// so it would see a different value).
    #[error("cannot encode {what}: {reason}")]
    Invalid {
        /// The attribute.
        what: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The error type of every `ipvs-nl` operation.
///
/// Kernel errnos map to typed kinds spelled the same in every crate of the workspace; [`Error::errno`]
/// gives the raw value back (so a command-line tool can print the text its C original prints).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed (socket, bind, send, recv).
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel has no "IPVS" generic-netlink family (module `ip_vs` not loaded or not built): the
    /// controller answered `ENOENT`.
    #[error("the kernel has no IPVS generic netlink family (is ip_vs loaded?)")]
    FamilyNotFound,
    /// `EEXIST`: the service or destination already exists, or a sync daemon already runs.
    #[error("already exists")]
    Exists,
    /// `ESRCH`: no such service (or no such sync daemon when stopping one).
    #[error("no such service")]
    NoSuchService,
    /// `ENOENT`: no such destination, or (when adding or editing a service) no such scheduler or
    /// persistence engine.
    #[error("not found (no such destination, scheduler or persistence engine)")]
    NotFound,
    /// `EPERM` or `EACCES` (which one is kept): needs `CAP_NET_ADMIN` in the socket's network namespace.
    #[error("permission denied (errno {errno})")]
    PermissionDenied {
        /// `EPERM` or `EACCES`.
        errno: i32,
    },
    /// `EBUSY`.
    #[error("busy")]
    Busy,
    /// `EINVAL`: the kernel rejected a parameter.
    #[error("invalid argument")]
    Invalid,
    /// `ENOBUFS`: the socket's receive buffer overflowed and replies were lost.
    #[error("netlink receive buffer overrun")]
    Overrun,
    /// Any other kernel errno (`ENOMEM`, `EAFNOSUPPORT`, ...).
    #[error("kernel error: {}", strerror(*errno))]
    Kernel {
        /// The positive errno value.
        errno: i32,
    },
    /// A reply that cannot be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A request that cannot be encoded (see [`EmitError`]); nothing was sent.
    #[error(transparent)]
    Encode(#[from] EmitError),
}

impl Error {
    /// Maps a positive errno from the kernel to its typed kind.
    pub fn from_errno(errno: i32) -> Error {
        match errno {
            libc::EEXIST => Error::Exists,
            libc::ESRCH => Error::NoSuchService,
            libc::ENOENT => Error::NotFound,
            libc::EPERM | libc::EACCES => Error::PermissionDenied { errno },
            libc::EBUSY => Error::Busy,
            libc::EINVAL => Error::Invalid,
            libc::ENOBUFS => Error::Overrun,
            errno => Error::Kernel { errno },
        }
    }

    /// The errno the kernel (or a system call) returned, for every error that came from one; `None` for
    /// decoding and encoding errors.
    pub fn errno(&self) -> Option<i32> {
        Some(match self {
            Error::Exists => libc::EEXIST,
            Error::NoSuchService => libc::ESRCH,
            Error::NotFound | Error::FamilyNotFound => libc::ENOENT,
            Error::PermissionDenied { errno } | Error::Kernel { errno } => *errno,
            Error::Busy => libc::EBUSY,
            Error::Invalid => libc::EINVAL,
            Error::Overrun => libc::ENOBUFS,
            Error::Io(e) => return e.raw_os_error(),
            Error::Decode(_) | Error::Encode(_) => return None,
        })
    }
}

/// The C library's text for `errno`, without std's " (os error N)" suffix.
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
