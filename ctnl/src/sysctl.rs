//! Conntrack sysctl tuning: read, validate and write every `nf_conntrack_*` knob, all or nothing.
//!
//! The knobs live in two places:
//!
//! * `/proc/sys/net/netfilter/nf_conntrack_*`: one file per knob. Most are **per network namespace**
//!   (timeouts, `acct`, `timestamp`, `events`, `tcp_loose`, ...). `nf_conntrack_max`,
//!   `nf_conntrack_buckets` and `nf_conntrack_expect_max` are global: the kernel shows them read-only
//!   (mode 0444) inside any namespace but the initial one.
//! * `/sys/module/nf_conntrack/parameters/hashsize`: the same hash table size as `nf_conntrack_buckets`,
//!   writable only from the initial network namespace (the kernel answers `EOPNOTSUPP` elsewhere).
//!
//! [`Sysctls`] is a typed snapshot with one `Option` field per knob (`None`: absent on this kernel, or not
//! read). The usual flow reads everything, changes a few fields and applies the whole change:
//!
//! ```no_run
//! use ctnl::sysctl::{SysctlFs, Events};
//!
//! let fs = SysctlFs::new()?;
//! let mut want = fs.read_all()?;
//! want.udp_timeout = Some(60);
//! want.acct = Some(true);
//! want.events = Some(Events::Enabled);
//! // Validates every changed knob first (range, cross-knob rules, writability in this namespace),
//! // then writes them; if one write fails, the knobs already written are restored.
//! let applied = fs.apply(&want)?;
//! println!("changed {} knobs", applied.changed.len());
//! # Ok::<(), ctnl::sysctl::SysctlError>(())
//! ```
//!
//! Every failure is a [`SysctlError`] naming the [`Knob`] and a [`Reason`]. This module has its own error
//! type so it can be used without the rest of the crate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where the `/proc` knobs live.
pub const PROC_NETFILTER_DIR: &str = "/proc/sys/net/netfilter";
/// Where the `nf_conntrack` module parameters live.
pub const MODULE_PARAMS_DIR: &str = "/sys/module/nf_conntrack/parameters";

/// Largest timeout, in seconds, this module accepts.
///
/// The kernel stores timeouts in jiffies in an `int` and rejects seconds above `INT_MAX / HZ`. `HZ` is at
/// most 1000, so `INT_MAX / 1000` (about 24.8 days) is accepted by every kernel configuration.
pub const TIMEOUT_MAX_SECS: i64 = i32::MAX as i64 / 1000;

/// Largest hash table size accepted for `nf_conntrack_buckets` / `hashsize` (2^28 buckets is already a
/// 2 GiB table).
pub const BUCKETS_MAX: i64 = 1 << 28;

/// Why a knob could not be read, validated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The value is outside the range the kernel accepts for this knob.
    #[error("value {value} is out of range {min}..={max}")]
    OutOfRange {
        /// The rejected value.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// The knob is global and this thread is not in the initial network namespace, where only it can be
    /// written.
    #[error("read-only in a non-initial network namespace (the knob is global)")]
    ReadOnlyInChildNamespace,
    /// The knob is a read-only status value (e.g. `nf_conntrack_count`).
    #[error("read-only")]
    ReadOnly,
    /// The knob does not exist on this kernel.
    #[error("not present on this kernel")]
    Absent,
    /// The text is not a value of this knob.
    #[error("cannot parse {text:?} as a value")]
    Unparsable {
        /// The text as read or given.
        text: String,
    },
    /// The new value breaks a rule tying it to another knob.
    #[error("conflicts with {other}: {rule}")]
    Conflict {
        /// The other knob of the rule.
        other: Knob,
        /// The rule, in words.
        rule: &'static str,
    },
    /// The kernel (or the file system) refused the read or write.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// A write failed, and restoring the knobs written before it failed too: the change is half-applied.
    #[error("write failed ({write}); restoring {} knob(s) failed too: {restore:?}", restore.len())]
    RestoreFailed {
        /// Why the write failed.
        write: io::Error,
        /// Each knob that could not be restored, with the reason.
        restore: Vec<(Knob, io::Error)>,
    },
}

/// A sysctl error: the knob and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{knob}: {reason}")]
#[non_exhaustive]
pub struct SysctlError {
    /// The knob concerned.
    pub knob: Knob,
    /// What went wrong.
    #[source]
    pub reason: Reason,
}

impl SysctlError {
    fn new(knob: Knob, reason: Reason) -> Self {
        SysctlError { knob, reason }
    }
}

/// A knob name that is not one of [`Knob::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown conntrack sysctl {0:?}")]
pub struct UnknownKnob(pub String);

/// Which namespace may write a knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Each network namespace has its own value, writable there.
    PerNamespace,
    /// One value for the whole machine, writable only from the initial network namespace.
    Global,
    /// A status value nobody writes.
    Status,
}

/// Whether a knob can be written from the calling thread, right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// The knob can be written.
    Writable,
    /// The knob exists but cannot be written from here; the reason says why.
    ReadOnly,
    /// The knob is global and this is not the initial network namespace.
    ReadOnlyInChildNamespace,
    /// The knob does not exist on this kernel.
    Absent,
}

/// The `nf_conntrack_events` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Events {
    /// 0: no conntrack events.
    Disabled,
    /// 1: events always generated.
    Enabled,
    /// 2: events generated only while some listener (ctnetlink or nft) is subscribed (the default since
    /// Linux 5.19).
    Auto,
}

/// A value type a knob can hold; converts to and from the kernel's integer text.
pub trait KnobValue: Copy + PartialEq + fmt::Debug {
    /// The integer the kernel stores.
    fn to_raw(self) -> i64;
    /// The typed value of a kernel integer, if representable.
    fn from_raw(raw: i64) -> Option<Self>;
}

impl KnobValue for bool {
    fn to_raw(self) -> i64 {
        i64::from(self)
    }
    fn from_raw(raw: i64) -> Option<Self> {
        match raw {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl KnobValue for u8 {
    fn to_raw(self) -> i64 {
        i64::from(self)
    }
    fn from_raw(raw: i64) -> Option<Self> {
        u8::try_from(raw).ok()
    }
}

impl KnobValue for u32 {
    fn to_raw(self) -> i64 {
        i64::from(self)
    }
    fn from_raw(raw: i64) -> Option<Self> {
        u32::try_from(raw).ok()
    }
}

impl KnobValue for u64 {
    fn to_raw(self) -> i64 {
        // Values above i64::MAX cannot be stored by the kernel's `unsigned long` proc handlers we use
        // either; saturate so range validation rejects them.
        i64::try_from(self).unwrap_or(i64::MAX)
    }
    fn from_raw(raw: i64) -> Option<Self> {
        u64::try_from(raw).ok()
    }
}

impl KnobValue for Events {
    fn to_raw(self) -> i64 {
        match self {
            Events::Disabled => 0,
            Events::Enabled => 1,
            Events::Auto => 2,
        }
    }
    fn from_raw(raw: i64) -> Option<Self> {
        match raw {
            0 => Some(Events::Disabled),
            1 => Some(Events::Enabled),
            2 => Some(Events::Auto),
            _ => None,
        }
    }
}

/// Where a knob's file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Proc(&'static str),
    Module(&'static str),
}

const T: i64 = TIMEOUT_MAX_SECS;
const IMAX: i64 = i32::MAX as i64;

macro_rules! knobs {
    ($( $(#[$doc:meta])* $variant:ident, $field:ident: $ty:ty, $loc:expr, $min:expr, $max:expr, $scope:ident; )*) => {
        /// One conntrack sysctl knob.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Knob {
            $( $(#[$doc])* $variant, )*
        }

        impl Knob {
            /// Every knob this module knows, in the order they are written.
            pub const ALL: &'static [Knob] = &[ $( Knob::$variant, )* ];

            fn loc(self) -> Loc {
                match self { $( Knob::$variant => $loc, )* }
            }

            /// The range the kernel accepts (inclusive).
            pub fn range(self) -> (i64, i64) {
                match self { $( Knob::$variant => ($min, $max), )* }
            }

            /// Which namespace may write this knob.
            pub fn scope(self) -> Scope {
                match self { $( Knob::$variant => Scope::$scope, )* }
            }

            /// Parses and range-checks a value given as text (as in `sysctl -w`).
            pub fn parse_value(self, text: &str) -> Result<i64, SysctlError> {
                let raw: i64 = text.trim().parse().map_err(|_| {
                    SysctlError::new(self, Reason::Unparsable { text: text.to_owned() })
                })?;
                self.check_range(raw)?;
                let representable = match self { $( Knob::$variant => <$ty>::from_raw(raw).is_some(), )* };
                if representable {
                    Ok(raw)
                } else {
                    Err(SysctlError::new(self, Reason::Unparsable { text: text.to_owned() }))
                }
            }
        }

        /// A typed snapshot of every conntrack knob. `None` means absent on this kernel (or not read, or
        /// "leave alone" when applying).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Sysctls {
            $( $(#[$doc])* pub $field: Option<$ty>, )*
        }

        impl Sysctls {
            /// A knob's value as the kernel's integer.
            pub fn get_raw(&self, knob: Knob) -> Option<i64> {
                match knob { $( Knob::$variant => self.$field.map(KnobValue::to_raw), )* }
            }

            /// Sets a knob from the kernel's integer (`None` clears it). Checks the range and the type.
            pub fn set_raw(&mut self, knob: Knob, raw: Option<i64>) -> Result<(), SysctlError> {
                let Some(raw) = raw else {
                    match knob { $( Knob::$variant => self.$field = None, )* }
                    return Ok(());
                };
                knob.check_range(raw)?;
                match knob {
                    $( Knob::$variant => {
                        self.$field = Some(<$ty>::from_raw(raw).ok_or_else(|| {
                            SysctlError::new(knob, Reason::Unparsable { text: raw.to_string() })
                        })?);
                    } )*
                }
                Ok(())
            }
        }
    };
}

knobs! {
    /// `nf_conntrack_max`: table size limit (0 = no limit). Global.
    Max, max: u32, Loc::Proc("nf_conntrack_max"), 0, IMAX, Global;
    /// `nf_conntrack_buckets`: hash table size. Global.
    Buckets, buckets: u32, Loc::Proc("nf_conntrack_buckets"), 1, BUCKETS_MAX, Global;
    /// `/sys/module/nf_conntrack/parameters/hashsize`: the same hash table size, as a module parameter.
    /// Global.
    Hashsize, hashsize: u32, Loc::Module("hashsize"), 1, BUCKETS_MAX, Global;
    /// `nf_conntrack_expect_max`: expectation table limit. Global.
    ExpectMax, expect_max: u32, Loc::Proc("nf_conntrack_expect_max"), 1, IMAX, Global;
    /// `nf_conntrack_count`: the current number of entries (read-only status).
    Count, count: u32, Loc::Proc("nf_conntrack_count"), 0, IMAX, Status;
    /// `nf_conntrack_acct`: per-entry packet and byte counters for new entries.
    Acct, acct: bool, Loc::Proc("nf_conntrack_acct"), 0, 1, PerNamespace;
    /// `nf_conntrack_timestamp`: start/stop timestamps for new entries.
    Timestamp, timestamp: bool, Loc::Proc("nf_conntrack_timestamp"), 0, 1, PerNamespace;
    /// `nf_conntrack_events`: conntrack event generation.
    Events, events: Events, Loc::Proc("nf_conntrack_events"), 0, 2, PerNamespace;
    /// `nf_conntrack_checksum`: verify checksums of packets being tracked.
    Checksum, checksum: bool, Loc::Proc("nf_conntrack_checksum"), 0, 1, PerNamespace;
    /// `nf_conntrack_log_invalid`: log invalid packets of this IP protocol number (255 = all, 0 = none).
    LogInvalid, log_invalid: u8, Loc::Proc("nf_conntrack_log_invalid"), 0, 255, PerNamespace;
    /// `nf_conntrack_tcp_loose`: pick up already established TCP connections.
    TcpLoose, tcp_loose: bool, Loc::Proc("nf_conntrack_tcp_loose"), 0, 1, PerNamespace;
    /// `nf_conntrack_tcp_be_liberal`: accept out-of-window TCP packets.
    TcpBeLiberal, tcp_be_liberal: bool, Loc::Proc("nf_conntrack_tcp_be_liberal"), 0, 1, PerNamespace;
    /// `nf_conntrack_tcp_ignore_invalid_rst`: do not mark out-of-window RSTs invalid.
    TcpIgnoreInvalidRst, tcp_ignore_invalid_rst: bool, Loc::Proc("nf_conntrack_tcp_ignore_invalid_rst"), 0, 1, PerNamespace;
    /// `nf_conntrack_tcp_max_retrans`: retransmissions before the max_retrans timeout applies.
    TcpMaxRetrans, tcp_max_retrans: u8, Loc::Proc("nf_conntrack_tcp_max_retrans"), 0, 255, PerNamespace;
    /// `nf_conntrack_tcp_timeout_syn_sent`, seconds.
    TcpTimeoutSynSent, tcp_timeout_syn_sent: u32, Loc::Proc("nf_conntrack_tcp_timeout_syn_sent"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_syn_recv`, seconds.
    TcpTimeoutSynRecv, tcp_timeout_syn_recv: u32, Loc::Proc("nf_conntrack_tcp_timeout_syn_recv"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_established`, seconds.
    TcpTimeoutEstablished, tcp_timeout_established: u32, Loc::Proc("nf_conntrack_tcp_timeout_established"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_fin_wait`, seconds.
    TcpTimeoutFinWait, tcp_timeout_fin_wait: u32, Loc::Proc("nf_conntrack_tcp_timeout_fin_wait"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_close_wait`, seconds.
    TcpTimeoutCloseWait, tcp_timeout_close_wait: u32, Loc::Proc("nf_conntrack_tcp_timeout_close_wait"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_last_ack`, seconds.
    TcpTimeoutLastAck, tcp_timeout_last_ack: u32, Loc::Proc("nf_conntrack_tcp_timeout_last_ack"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_time_wait`, seconds.
    TcpTimeoutTimeWait, tcp_timeout_time_wait: u32, Loc::Proc("nf_conntrack_tcp_timeout_time_wait"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_close`, seconds.
    TcpTimeoutClose, tcp_timeout_close: u32, Loc::Proc("nf_conntrack_tcp_timeout_close"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_max_retrans`, seconds.
    TcpTimeoutMaxRetrans, tcp_timeout_max_retrans: u32, Loc::Proc("nf_conntrack_tcp_timeout_max_retrans"), 0, T, PerNamespace;
    /// `nf_conntrack_tcp_timeout_unacknowledged`, seconds.
    TcpTimeoutUnacknowledged, tcp_timeout_unacknowledged: u32, Loc::Proc("nf_conntrack_tcp_timeout_unacknowledged"), 0, T, PerNamespace;
    /// `nf_conntrack_udp_timeout`, seconds (unreplied UDP).
    UdpTimeout, udp_timeout: u32, Loc::Proc("nf_conntrack_udp_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_udp_timeout_stream`, seconds (UDP seen both ways).
    UdpTimeoutStream, udp_timeout_stream: u32, Loc::Proc("nf_conntrack_udp_timeout_stream"), 0, T, PerNamespace;
    /// `nf_conntrack_icmp_timeout`, seconds.
    IcmpTimeout, icmp_timeout: u32, Loc::Proc("nf_conntrack_icmp_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_icmpv6_timeout`, seconds.
    Icmpv6Timeout, icmpv6_timeout: u32, Loc::Proc("nf_conntrack_icmpv6_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_generic_timeout`, seconds (protocols without their own tracker).
    GenericTimeout, generic_timeout: u32, Loc::Proc("nf_conntrack_generic_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_gre_timeout`, seconds.
    GreTimeout, gre_timeout: u32, Loc::Proc("nf_conntrack_gre_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_gre_timeout_stream`, seconds.
    GreTimeoutStream, gre_timeout_stream: u32, Loc::Proc("nf_conntrack_gre_timeout_stream"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_closed`, seconds.
    SctpTimeoutClosed, sctp_timeout_closed: u32, Loc::Proc("nf_conntrack_sctp_timeout_closed"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_cookie_wait`, seconds.
    SctpTimeoutCookieWait, sctp_timeout_cookie_wait: u32, Loc::Proc("nf_conntrack_sctp_timeout_cookie_wait"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_cookie_echoed`, seconds.
    SctpTimeoutCookieEchoed, sctp_timeout_cookie_echoed: u32, Loc::Proc("nf_conntrack_sctp_timeout_cookie_echoed"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_established`, seconds.
    SctpTimeoutEstablished, sctp_timeout_established: u32, Loc::Proc("nf_conntrack_sctp_timeout_established"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_shutdown_sent`, seconds.
    SctpTimeoutShutdownSent, sctp_timeout_shutdown_sent: u32, Loc::Proc("nf_conntrack_sctp_timeout_shutdown_sent"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_shutdown_recd`, seconds.
    SctpTimeoutShutdownRecd, sctp_timeout_shutdown_recd: u32, Loc::Proc("nf_conntrack_sctp_timeout_shutdown_recd"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_shutdown_ack_sent`, seconds.
    SctpTimeoutShutdownAckSent, sctp_timeout_shutdown_ack_sent: u32, Loc::Proc("nf_conntrack_sctp_timeout_shutdown_ack_sent"), 0, T, PerNamespace;
    /// `nf_conntrack_sctp_timeout_heartbeat_sent`, seconds.
    SctpTimeoutHeartbeatSent, sctp_timeout_heartbeat_sent: u32, Loc::Proc("nf_conntrack_sctp_timeout_heartbeat_sent"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_request`, seconds (kernels with DCCP tracking only).
    DccpTimeoutRequest, dccp_timeout_request: u32, Loc::Proc("nf_conntrack_dccp_timeout_request"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_respond`, seconds (kernels with DCCP tracking only).
    DccpTimeoutRespond, dccp_timeout_respond: u32, Loc::Proc("nf_conntrack_dccp_timeout_respond"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_partopen`, seconds (kernels with DCCP tracking only).
    DccpTimeoutPartopen, dccp_timeout_partopen: u32, Loc::Proc("nf_conntrack_dccp_timeout_partopen"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_open`, seconds (kernels with DCCP tracking only).
    DccpTimeoutOpen, dccp_timeout_open: u32, Loc::Proc("nf_conntrack_dccp_timeout_open"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_closereq`, seconds (kernels with DCCP tracking only).
    DccpTimeoutCloseReq, dccp_timeout_closereq: u32, Loc::Proc("nf_conntrack_dccp_timeout_closereq"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_closing`, seconds (kernels with DCCP tracking only).
    DccpTimeoutClosing, dccp_timeout_closing: u32, Loc::Proc("nf_conntrack_dccp_timeout_closing"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_timeout_timewait`, seconds (kernels with DCCP tracking only).
    DccpTimeoutTimewait, dccp_timeout_timewait: u32, Loc::Proc("nf_conntrack_dccp_timeout_timewait"), 0, T, PerNamespace;
    /// `nf_conntrack_dccp_loose`: pick up DCCP connections in the middle (kernels with DCCP tracking only).
    DccpLoose, dccp_loose: bool, Loc::Proc("nf_conntrack_dccp_loose"), 0, 1, PerNamespace;
    /// `nf_conntrack_frag6_timeout`: IPv6 reassembly timeout, seconds.
    Frag6Timeout, frag6_timeout: u32, Loc::Proc("nf_conntrack_frag6_timeout"), 0, T, PerNamespace;
    /// `nf_conntrack_frag6_low_thresh`: IPv6 reassembly memory low threshold, bytes (at most the high one).
    Frag6LowThresh, frag6_low_thresh: u64, Loc::Proc("nf_conntrack_frag6_low_thresh"), 0, i64::MAX, PerNamespace;
    /// `nf_conntrack_frag6_high_thresh`: IPv6 reassembly memory high threshold, bytes (at least the low
    /// one).
    Frag6HighThresh, frag6_high_thresh: u64, Loc::Proc("nf_conntrack_frag6_high_thresh"), 0, i64::MAX, PerNamespace;
}

impl Knob {
    /// The knob's name as `sysctl` shows it under `net.netfilter.` (or `hashsize` for the module parameter).
    pub fn name(self) -> &'static str {
        match self.loc() {
            Loc::Proc(n) | Loc::Module(n) => n,
        }
    }

    /// The knob named `name` (`nf_conntrack_max`, `net.netfilter.nf_conntrack_max`, or `hashsize`).
    pub fn from_name(name: &str) -> Result<Knob, UnknownKnob> {
        let short = name
            .trim()
            .trim_start_matches("net.netfilter.")
            .trim_start_matches("net/netfilter/");
        Knob::ALL
            .iter()
            .copied()
            .find(|k| k.name() == short)
            .ok_or_else(|| UnknownKnob(name.to_owned()))
    }

    /// True for the per-protocol timeouts (their values are seconds).
    pub fn is_timeout(self) -> bool {
        self.name().contains("_timeout")
    }

    fn check_range(self, raw: i64) -> Result<(), SysctlError> {
        let (min, max) = self.range();
        if raw < min || raw > max {
            return Err(SysctlError::new(
                self,
                Reason::OutOfRange {
                    value: raw,
                    min,
                    max,
                },
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Knob {
    type Err = UnknownKnob;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Knob::from_name(s)
    }
}

impl Sysctls {
    /// The knobs whose value differs between `self` (current) and `wanted`, ignoring `None` in `wanted`.
    pub fn diff(&self, wanted: &Sysctls) -> Vec<(Knob, Option<i64>, i64)> {
        Knob::ALL
            .iter()
            .filter_map(|&k| {
                let new = wanted.get_raw(k)?;
                let old = self.get_raw(k);
                (old != Some(new)).then_some((k, old, new))
            })
            .collect()
    }
}

/// One validated write: the knob, its current value and the value to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The knob.
    pub knob: Knob,
    /// The value before the change (restored if a later write fails).
    pub old: i64,
    /// The value to write.
    pub new: i64,
}

/// A fully validated change, in the order it will be written. Made by [`SysctlFs::plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The writes, in order.
    pub changes: Vec<Change>,
}

/// What [`SysctlFs::apply`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Every write made, in order.
    pub changed: Vec<Change>,
}

/// Access to the conntrack knobs of the calling thread's network namespace.
///
/// Files under `/proc/sys/net` show the namespace of the thread that opens them, so a thread that
/// `unshare(CLONE_NEWNET)`s (as the crate's tests do) sees and tunes its own namespace.
#[derive(Debug, Clone)]
pub struct SysctlFs {
    proc_dir: PathBuf,
    module_dir: PathBuf,
    initial_netns: bool,
}

impl SysctlFs {
    /// The real knobs, for the calling thread's network namespace.
    pub fn new() -> Result<Self, SysctlError> {
        let initial_netns = in_initial_netns().map_err(|e| {
            // Without nf_conntrack_max there is no conntrack in this kernel (or /proc is not mounted).
            let reason = if e.kind() == io::ErrorKind::NotFound {
                Reason::Absent
            } else {
                Reason::Io(e)
            };
            SysctlError::new(Knob::Max, reason)
        })?;
        Ok(SysctlFs {
            proc_dir: PROC_NETFILTER_DIR.into(),
            module_dir: MODULE_PARAMS_DIR.into(),
            initial_netns,
        })
    }

    /// Knobs under other directories (for tests and chroots): `proc_dir` holds the `nf_conntrack_*`
    /// files and `module_dir` the `hashsize` file; `initial_netns` says whether global knobs may be written.
    pub fn with_dirs(
        proc_dir: impl Into<PathBuf>,
        module_dir: impl Into<PathBuf>,
        initial_netns: bool,
    ) -> Self {
        SysctlFs {
            proc_dir: proc_dir.into(),
            module_dir: module_dir.into(),
            initial_netns,
        }
    }

    /// True when global knobs may be written (the calling thread was in the initial network namespace
    /// when this value was made).
    pub fn is_initial_netns(&self) -> bool {
        self.initial_netns
    }

    /// The file of a knob.
    pub fn path(&self, knob: Knob) -> PathBuf {
        match knob.loc() {
            Loc::Proc(n) => self.proc_dir.join(n),
            Loc::Module(n) => self.module_dir.join(n),
        }
    }

    /// Whether the knob can be written from here.
    pub fn access(&self, knob: Knob) -> Access {
        let Ok(meta) = std::fs::metadata(self.path(knob)) else {
            return Access::Absent;
        };
        if !meta.is_file() {
            return Access::Absent;
        }
        match knob.scope() {
            Scope::Status => Access::ReadOnly,
            Scope::Global if !self.initial_netns => Access::ReadOnlyInChildNamespace,
            _ => {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o200 == 0 {
                    // The kernel registers global knobs 0444 in child namespaces.
                    if knob.scope() == Scope::Global {
                        Access::ReadOnlyInChildNamespace
                    } else {
                        Access::ReadOnly
                    }
                } else {
                    Access::Writable
                }
            }
        }
    }

    /// Reads one knob as the kernel's integer.
    pub fn read(&self, knob: Knob) -> Result<i64, SysctlError> {
        let text = match std::fs::read_to_string(self.path(knob)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SysctlError::new(knob, Reason::Absent));
            }
            Err(e) => return Err(SysctlError::new(knob, Reason::Io(e))),
        };
        text.trim().parse::<i64>().map_err(|_| {
            SysctlError::new(
                knob,
                Reason::Unparsable {
                    text: text.trim().to_owned(),
                },
            )
        })
    }

    /// Reads every knob present on this kernel into a typed snapshot (absent knobs stay `None`).
    pub fn read_all(&self) -> Result<Sysctls, SysctlError> {
        let mut s = Sysctls::default();
        for &k in Knob::ALL {
            match self.read(k) {
                Ok(raw) => {
                    // A value the kernel holds but the typed field cannot (e.g. a negative timeout
                    // someone wrote by hand) is reported, not silently dropped.
                    let typed_ok = s.set_raw(k, Some(raw)).is_ok();
                    if !typed_ok {
                        return Err(SysctlError::new(
                            k,
                            Reason::Unparsable {
                                text: raw.to_string(),
                            },
                        ));
                    }
                }
                Err(SysctlError {
                    reason: Reason::Absent,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(s)
    }

    /// Validates the change from the current values to `wanted` (fields that are `None` are left alone)
    /// without writing anything: every changed knob must exist, be writable from here and be in range,
    /// and the cross-knob rules must hold on the result. Returns the writes in a safe order.
    pub fn plan(&self, wanted: &Sysctls) -> Result<Plan, SysctlError> {
        let current = self.read_all()?;
        self.plan_from(&current, wanted)
    }

    /// Like [`SysctlFs::plan`], against a snapshot of the current values the caller already has.
    pub fn plan_from(&self, current: &Sysctls, wanted: &Sysctls) -> Result<Plan, SysctlError> {
        let mut changes = Vec::new();
        for (knob, old, new) in current.diff(wanted) {
            knob.check_range(new)?;
            match self.access(knob) {
                Access::Writable => {}
                Access::Absent => return Err(SysctlError::new(knob, Reason::Absent)),
                Access::ReadOnlyInChildNamespace => {
                    return Err(SysctlError::new(knob, Reason::ReadOnlyInChildNamespace));
                }
                Access::ReadOnly => return Err(SysctlError::new(knob, Reason::ReadOnly)),
            }
            let old = old.ok_or_else(|| SysctlError::new(knob, Reason::Absent))?;
            changes.push(Change { knob, old, new });
        }

        // The result: current values overlaid with the wanted ones.
        let after = |k: Knob| wanted.get_raw(k).or_else(|| current.get_raw(k));

        // Cross-knob rule: the frag6 low threshold may not exceed the high one.
        if let (Some(low), Some(high)) = (after(Knob::Frag6LowThresh), after(Knob::Frag6HighThresh))
            && low > high
        {
            let knob = if wanted.frag6_low_thresh.is_some() {
                Knob::Frag6LowThresh
            } else {
                Knob::Frag6HighThresh
            };
            let other = if knob == Knob::Frag6LowThresh {
                Knob::Frag6HighThresh
            } else {
                Knob::Frag6LowThresh
            };
            return Err(SysctlError::new(
                knob,
                Reason::Conflict {
                    other,
                    rule: "frag6_low_thresh must not exceed frag6_high_thresh",
                },
            ));
        }
        // Cross-knob rule: `nf_conntrack_buckets` and `hashsize` are one value.
        let b_changed = changes.iter().any(|c| c.knob == Knob::Buckets);
        let h_changed = changes.iter().any(|c| c.knob == Knob::Hashsize);
        if b_changed && h_changed && after(Knob::Buckets) != after(Knob::Hashsize) {
            return Err(SysctlError::new(
                Knob::Hashsize,
                Reason::Conflict {
                    other: Knob::Buckets,
                    rule: "hashsize and nf_conntrack_buckets are the same table size",
                },
            ));
        }

        // Order: the kernel checks each frag6 threshold against the other's *current* value, so when the
        // new low threshold is above the current high one, raise the high one first.
        let cur_high = current.get_raw(Knob::Frag6HighThresh);
        let low_pos = changes.iter().position(|c| c.knob == Knob::Frag6LowThresh);
        let high_pos = changes.iter().position(|c| c.knob == Knob::Frag6HighThresh);
        if let (Some(l), Some(h)) = (low_pos, high_pos) {
            let new_low = changes[l].new;
            let high_first = cur_high.is_some_and(|ch| new_low > ch);
            if high_first != (h < l) {
                changes.swap(l, h);
            }
        }
        Ok(Plan { changes })
    }

    /// Validates the whole change (see [`SysctlFs::plan`]), then writes it. If a write fails, every knob
    /// already written is restored (in reverse order) before the error is returned, so nothing is left
    /// half-applied; if a restore fails too, the error is [`Reason::RestoreFailed`].
    pub fn apply(&self, wanted: &Sysctls) -> Result<Applied, SysctlError> {
        let plan = self.plan(wanted)?;
        self.apply_plan(&plan)
    }

    /// Writes a plan made by [`SysctlFs::plan`], restoring on failure like [`SysctlFs::apply`].
    pub fn apply_plan(&self, plan: &Plan) -> Result<Applied, SysctlError> {
        let mut done: Vec<Change> = Vec::with_capacity(plan.changes.len());
        for &change in &plan.changes {
            if let Err(write) = self.write_raw(change.knob, change.new) {
                let mut restore = Vec::new();
                for prev in done.iter().rev() {
                    if let Err(e) = self.write_raw(prev.knob, prev.old) {
                        restore.push((prev.knob, e));
                    }
                }
                let reason = if restore.is_empty() {
                    Reason::Io(write)
                } else {
                    Reason::RestoreFailed { write, restore }
                };
                return Err(SysctlError::new(change.knob, reason));
            }
            done.push(change);
        }
        Ok(Applied { changed: done })
    }

    /// Validates and writes one knob (the one-knob form of [`SysctlFs::apply`]).
    pub fn write(&self, knob: Knob, raw: i64) -> Result<(), SysctlError> {
        let mut wanted = Sysctls::default();
        wanted.set_raw(knob, Some(raw))?;
        let current_raw = self.read(knob)?;
        let mut current = Sysctls::default();
        // The current value may not fit the typed field (e.g. a negative timeout); only the raw
        // value matters for the diff, so fall back to "unknown" and let plan_from report it.
        if current.set_raw(knob, Some(current_raw)).is_err() {
            return Err(SysctlError::new(
                knob,
                Reason::Unparsable {
                    text: current_raw.to_string(),
                },
            ));
        }
        // The cross-knob rules need the other half of the pair.
        for other in [Knob::Frag6LowThresh, Knob::Frag6HighThresh] {
            if other != knob
                && matches!(knob, Knob::Frag6LowThresh | Knob::Frag6HighThresh)
                && let Ok(v) = self.read(other)
            {
                current.set_raw(other, Some(v))?;
            }
        }
        let plan = self.plan_from(&current, &wanted)?;
        self.apply_plan(&plan).map(|_| ())
    }

    fn write_raw(&self, knob: Knob, raw: i64) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(false)
            .open(self.path(knob))?;
        // One write(2) of the whole text: proc handlers parse each write call separately.
        f.write_all(format!("{raw}\n").as_bytes())
    }
}

/// True when the calling **thread** is in the initial network namespace.
///
/// Comparing `/proc/thread-self/ns/net` with PID 1's needs ptrace rights over PID 1, which a container's
/// root may lack; the kernel itself gives a simpler signal: it registers `nf_conntrack_max` writable
/// (0644) in the initial namespace only, and read-only (0444) in every other one.
pub fn in_initial_netns() -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(Path::new(PROC_NETFILTER_DIR).join("nf_conntrack_max"))?;
    Ok(meta.permissions().mode() & 0o200 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_tree(tag: &str) -> (PathBuf, SysctlFs) {
        let dir = std::env::temp_dir().join(format!("ctnl-sysctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        std::fs::create_dir_all(dir.join("mod")).unwrap();
        for &k in Knob::ALL {
            if k.name().contains("dccp") {
                continue; // absent, like on 6.18
            }
            let (min, _) = k.range();
            let v = match k {
                Knob::Frag6HighThresh => 4_194_304,
                Knob::Frag6LowThresh => 3_145_728,
                Knob::UdpTimeout => 30,
                _ => min,
            };
            let p = match k.loc() {
                Loc::Proc(n) => dir.join("proc").join(n),
                Loc::Module(n) => dir.join("mod").join(n),
            };
            std::fs::write(p, format!("{v}\n")).unwrap();
        }
        let fs = SysctlFs::with_dirs(dir.join("proc"), dir.join("mod"), false);
        (dir, fs)
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &k in Knob::ALL {
            assert!(seen.insert(k.name()), "duplicate {k}");
            assert_eq!(Knob::from_name(k.name()), Ok(k));
            assert_eq!(format!("net.netfilter.{}", k.name()).parse::<Knob>(), Ok(k));
        }
        assert!(Knob::from_name("nf_conntrack_nonsense").is_err());
    }

    #[test]
    fn parse_value_checks_range_and_type() {
        assert_eq!(Knob::Acct.parse_value("1").unwrap(), 1);
        let e = Knob::Acct.parse_value("2").unwrap_err();
        assert_eq!(e.knob, Knob::Acct);
        assert!(matches!(
            e.reason,
            Reason::OutOfRange {
                value: 2,
                min: 0,
                max: 1
            }
        ));
        let e = Knob::UdpTimeout.parse_value("-1").unwrap_err();
        assert!(matches!(e.reason, Reason::OutOfRange { value: -1, .. }));
        let e = Knob::UdpTimeout.parse_value("thirty").unwrap_err();
        assert!(matches!(e.reason, Reason::Unparsable { .. }));
        assert!(e.to_string().contains("nf_conntrack_udp_timeout"), "{e}");
        assert_eq!(Knob::Events.parse_value(" 2\n").unwrap(), 2);
        assert!(Knob::Events.parse_value("3").is_err());
        assert!(Knob::Buckets.parse_value("0").is_err());
    }

    #[test]
    fn fake_tree_apply_and_global_readonly() {
        let (dir, fs) = fake_tree("apply");
        let cur = fs.read_all().unwrap();
        assert_eq!(cur.udp_timeout, Some(30));
        assert_eq!(cur.dccp_timeout_open, None);
        let mut want = cur.clone();
        want.udp_timeout = Some(77);
        want.acct = Some(true);
        let applied = fs.apply(&want).unwrap();
        assert_eq!(applied.changed.len(), 2);
        assert_eq!(fs.read(Knob::UdpTimeout).unwrap(), 77);
        assert_eq!(fs.read(Knob::Acct).unwrap(), 1);

        let mut want = fs.read_all().unwrap();
        want.max = Some(1000);
        let e = fs.apply(&want).unwrap_err();
        assert_eq!(e.knob, Knob::Max);
        assert!(matches!(e.reason, Reason::ReadOnlyInChildNamespace));
        let want = Sysctls {
            dccp_loose: Some(true),
            ..Sysctls::default()
        };
        let e = fs.apply(&want).unwrap_err();
        assert!(matches!(e.reason, Reason::Absent));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn failed_write_restores_earlier_knobs() {
        let (dir, fs) = fake_tree("rollback");
        // After planning, replace the last knob's file by a directory so its write fails.
        let want = Sysctls {
            acct: Some(true),
            udp_timeout: Some(99),
            frag6_timeout: Some(5),
            ..Sysctls::default()
        };
        let plan = fs.plan(&want).unwrap();
        assert_eq!(plan.changes.len(), 3);
        let last = plan.changes[2].knob;
        assert_eq!(last, Knob::Frag6Timeout);
        let p = fs.path(last);
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let e = fs.apply_plan(&plan).unwrap_err();
        assert_eq!(e.knob, Knob::Frag6Timeout);
        assert!(matches!(e.reason, Reason::Io(_)), "{e}");
        assert_eq!(fs.read(Knob::Acct).unwrap(), 0);
        assert_eq!(fs.read(Knob::UdpTimeout).unwrap(), 30);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn frag6_rules_and_order() {
        let (dir, fs) = fake_tree("frag6");
        let mut want = Sysctls {
            frag6_low_thresh: Some(5_000_000),
            ..Sysctls::default()
        };
        let e = fs.plan(&want).unwrap_err();
        assert_eq!(e.knob, Knob::Frag6LowThresh);
        assert!(matches!(
            e.reason,
            Reason::Conflict {
                other: Knob::Frag6HighThresh,
                ..
            }
        ));
        // Raising both past the current high: high must be written first.
        want.frag6_high_thresh = Some(6_000_000);
        let plan = fs.plan(&want).unwrap();
        let order: Vec<Knob> = plan.changes.iter().map(|c| c.knob).collect();
        assert_eq!(order, [Knob::Frag6HighThresh, Knob::Frag6LowThresh]);
        // Lowering both below the current low: low first.
        want.frag6_low_thresh = Some(1000);
        want.frag6_high_thresh = Some(2000);
        let plan = fs.plan(&want).unwrap();
        let order: Vec<Knob> = plan.changes.iter().map(|c| c.knob).collect();
        assert_eq!(order, [Knob::Frag6LowThresh, Knob::Frag6HighThresh]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
