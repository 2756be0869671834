//! Netlink attribute writing shared by the raw floors ([`crate::ctraw`], [`crate::ipvsraw`]): the few
//! lines any hand-built netlink message needs, in native byte order as netlink wants.

/// `NLA_F_NESTED`.
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

pub(crate) fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_ne_bytes());
}

/// Appends one attribute, padded to 4 bytes.
pub(crate) fn attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    put_u16(buf, len as u16);
    put_u16(buf, kind);
    buf.extend_from_slice(value);
    buf.resize(buf.len() + (len.next_multiple_of(4) - len), 0);
}

/// Starts a nested attribute; returns where its length goes.
pub(crate) fn nest_start(buf: &mut Vec<u8>, kind: u16) -> usize {
    let at = buf.len();
    put_u16(buf, 0);
    put_u16(buf, kind | NLA_F_NESTED);
    at
}

/// Writes the length of the nest started at `at`.
pub(crate) fn nest_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u16;
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
}

/// Writes the length of the message started at `at` (its `nlmsghdr`'s first field).
pub(crate) fn msg_end(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}
