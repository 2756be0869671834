//! Without CAP_NET_ADMIN the kernel refuses ctnetlink requests with EPERM, which must surface as
//! `Error::PermissionDenied` (with the errno kept for the CLI's message).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(unsafe_code)] // capset(2) has no safe wrapper; it only changes this test thread's credentials.

use ctnl::{Conntrack, DumpFilter, Entry, Error, Tuple};

/// Drops every capability of the calling thread (capset acts per thread, so other tests are unaffected).
fn drop_all_caps() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3, this thread
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: both pointers reference live, correctly laid out structures for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const Header, data.as_ptr()) };
    rc == 0
}

#[test]
fn no_cap_net_admin_is_permission_denied() {
    let Some(_ns) = testkit::netns() else { return };
    assert!(
        drop_all_caps(),
        "capset: {}",
        std::io::Error::last_os_error()
    );
    // The socket is opened after the drop: netlink checks the opener's capabilities.
    let mut ct = Conntrack::open().unwrap();
    let o = Tuple::ports(
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
        17,
        1,
        2,
    );
    let e = {
        let mut x = Entry::new(o.clone(), o.reversed());
        x.timeout = Some(10);
        x
    };
    let err = ct.create(&e).unwrap_err();
    assert!(
        matches!(err, Error::PermissionDenied { errno } if errno == libc::EPERM),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(libc::EPERM));
    assert!(err.to_string().contains("Operation not permitted"), "{err}");
    let err = ct
        .dump(&DumpFilter::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
}
