//! Table statistics: per-CPU counters and the global entry count and limit.

use crate::dump::{Dump, DumpFilter, dump_request};
use crate::error::Error;
use crate::ops::Conntrack;
use crate::wire::{CpuStats, GlobalStats, NFNL_SUBSYS_CTNETLINK, ct_msg, finish_msg, start_msg};
use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};

impl Conntrack {
    /// Per-CPU statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`), one item per possible CPU.
    pub fn stats_cpu(&mut self) -> Result<Vec<CpuStats>, Error> {
        let seq = self.sock.next_seq();
        dump_request(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK,
            ct_msg::GET_STATS_CPU,
            seq,
            &DumpFilter::default(),
        )?;
        Dump::<CpuStats>::start(&mut self.sock, &self.sbuf, seq, None)?.collect()
    }

    /// The number of entries and the table limit (`IPCTNL_MSG_CT_GET_STATS`).
    pub fn stats(&mut self) -> Result<GlobalStats, Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK,
            ct_msg::GET_STATS,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            0,
            0,
        );
        finish_msg(&mut self.sbuf, start);
        let mut out = None;
        self.sock.transact(&self.sbuf, seq, |m| {
            if m.subsys() == NFNL_SUBSYS_CTNETLINK && out.is_none() {
                let (_, _, _, attrs) = m.nfgen()?;
                out = Some(GlobalStats::parse_attrs(attrs)?);
            }
            Ok(())
        })?;
        out.ok_or(Error::Protocol("stats acknowledged without an answer"))
    }
}
