//! Statistics messages: per-CPU conntrack and expectation counters, global entry count.

use super::{Attrs, cta};
use crate::error::DecodeError;

/// Per-CPU conntrack statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`, `enum ctattr_stats_cpu`). Counters the kernel
/// no longer fills stay zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CpuStats {
    /// CPU number (the nfgenmsg `res_id`).
    pub cpu: u16,
    /// `CTA_STATS_SEARCHED` (no longer used).
    pub searched: u32,
    /// `CTA_STATS_FOUND`.
    pub found: u32,
    /// `CTA_STATS_NEW` (no longer used).
    pub new: u32,
    /// `CTA_STATS_INVALID`.
    pub invalid: u32,
    /// `CTA_STATS_IGNORE` (no longer used).
    pub ignore: u32,
    /// `CTA_STATS_DELETE` (no longer used).
    pub delete: u32,
    /// `CTA_STATS_DELETE_LIST` (no longer used).
    pub delete_list: u32,
    /// `CTA_STATS_INSERT`.
    pub insert: u32,
    /// `CTA_STATS_INSERT_FAILED`.
    pub insert_failed: u32,
    /// `CTA_STATS_DROP`.
    pub drop: u32,
    /// `CTA_STATS_EARLY_DROP`.
    pub early_drop: u32,
    /// `CTA_STATS_ERROR`.
    pub error: u32,
    /// `CTA_STATS_SEARCH_RESTART`.
    pub search_restart: u32,
    /// `CTA_STATS_CLASH_RESOLVE`.
    pub clash_resolve: u32,
    /// `CTA_STATS_CHAIN_TOOLONG`.
    pub chain_toolong: u32,
}

impl CpuStats {
    /// Parses the attributes of one per-CPU message.
    pub(crate) fn parse_attrs(cpu: u16, buf: &[u8]) -> Result<Self, DecodeError> {
        let mut s = CpuStats {
            cpu,
            ..CpuStats::default()
        };
        for a in Attrs::new(buf, 0) {
            let a = a?;
            let slot = match a.kind {
                cta::STATS_SEARCHED => &mut s.searched,
                cta::STATS_FOUND => &mut s.found,
                cta::STATS_NEW => &mut s.new,
                cta::STATS_INVALID => &mut s.invalid,
                cta::STATS_IGNORE => &mut s.ignore,
                cta::STATS_DELETE => &mut s.delete,
                cta::STATS_DELETE_LIST => &mut s.delete_list,
                cta::STATS_INSERT => &mut s.insert,
                cta::STATS_INSERT_FAILED => &mut s.insert_failed,
                cta::STATS_DROP => &mut s.drop,
                cta::STATS_EARLY_DROP => &mut s.early_drop,
                cta::STATS_ERROR => &mut s.error,
                cta::STATS_SEARCH_RESTART => &mut s.search_restart,
                cta::STATS_CLASH_RESOLVE => &mut s.clash_resolve,
                cta::STATS_CHAIN_TOOLONG => &mut s.chain_toolong,
                _ => continue,
            };
            *slot = a.u32_be("CTA_STATS_*")?;
        }
        Ok(s)
    }
}

/// Global conntrack statistics (`IPCTNL_MSG_CT_GET_STATS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GlobalStats {
    /// Entries in the table now (`CTA_STATS_GLOBAL_ENTRIES`).
    pub entries: u32,
    /// Table limit (`CTA_STATS_GLOBAL_MAX_ENTRIES`, i.e. `nf_conntrack_max`).
    pub max_entries: u32,
}

impl GlobalStats {
    /// Parses the attributes of the global statistics message.
    pub(crate) fn parse_attrs(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut s = GlobalStats::default();
        for a in Attrs::new(buf, 0) {
            let a = a?;
            match a.kind {
                cta::STATS_GLOBAL_ENTRIES => s.entries = a.u32_be("CTA_STATS_GLOBAL_ENTRIES")?,
                cta::STATS_GLOBAL_MAX_ENTRIES => {
                    s.max_entries = a.u32_be("CTA_STATS_GLOBAL_MAX_ENTRIES")?
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Per-CPU expectation statistics (`IPCTNL_MSG_EXP_GET_STATS_CPU`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExpectCpuStats {
    /// CPU number.
    pub cpu: u16,
    /// `CTA_STATS_EXP_NEW`.
    pub new: u32,
    /// `CTA_STATS_EXP_CREATE`.
    pub create: u32,
    /// `CTA_STATS_EXP_DELETE`.
    pub delete: u32,
}

impl ExpectCpuStats {
    /// Parses the attributes of one per-CPU expectation statistics message.
    pub(crate) fn parse_attrs(cpu: u16, buf: &[u8]) -> Result<Self, DecodeError> {
        let mut s = ExpectCpuStats {
            cpu,
            ..ExpectCpuStats::default()
        };
        for a in Attrs::new(buf, 0) {
            let a = a?;
            match a.kind {
                cta::STATS_EXP_NEW => s.new = a.u32_be("CTA_STATS_EXP_NEW")?,
                cta::STATS_EXP_CREATE => s.create = a.u32_be("CTA_STATS_EXP_CREATE")?,
                cta::STATS_EXP_DELETE => s.delete = a.u32_be("CTA_STATS_EXP_DELETE")?,
                _ => {}
            }
        }
        Ok(s)
    }
}
