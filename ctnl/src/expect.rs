//! Expectation operations: dump, get, create, delete, flush, per-CPU statistics. Events come through
//! [`crate::EventSocket`] with the `EXP_*` groups.

use crate::dump::{Dump, DumpFilter, dump_request};
use crate::error::Error;
use crate::ops::{Conntrack, check};
use crate::wire::{
    Expect, ExpectCpuStats, Family, NFNL_SUBSYS_CTNETLINK_EXP, NLMSG_HDRLEN, Tuple, VecOut, cta,
    exp_msg, family_at, finish_msg, start_msg,
};
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};

impl Conntrack {
    /// Streams every expectation (of one family when one is given).
    pub fn dump_expect(&mut self, family: Option<Family>) -> Result<Dump<'_, Expect>, Error> {
        let seq = self.sock.next_seq();
        let f = DumpFilter {
            family,
            ..DumpFilter::default()
        };
        dump_request(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK_EXP,
            exp_msg::GET,
            seq,
            &f,
        )?;
        Dump::start(&mut self.sock, &self.sbuf, seq, None)
    }

    /// Per-CPU expectation statistics.
    pub fn expect_stats_cpu(&mut self) -> Result<Vec<ExpectCpuStats>, Error> {
        let seq = self.sock.next_seq();
        dump_request(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK_EXP,
            exp_msg::GET_STATS_CPU,
            seq,
            &DumpFilter::default(),
        )?;
        Dump::<ExpectCpuStats>::start(&mut self.sock, &self.sbuf, seq, None)?.collect()
    }

    /// Reads the expectation whose expected tuple is `tuple` (optionally pinned to `id`).
    pub fn get_expect(&mut self, tuple: &Tuple, id: Option<u32>) -> Result<Expect, Error> {
        let seq = self.sock.next_seq();
        self.exp_key_msg(exp_msg::GET, seq, tuple, id)?;
        let mut out = None;
        self.sock.transact(&self.sbuf, seq, |m| {
            if m.subsys() == NFNL_SUBSYS_CTNETLINK_EXP && out.is_none() {
                let (family, _, _, attrs) = m.nfgen()?;
                out = Some(Expect::parse_attrs(
                    family_at(family, NLMSG_HDRLEN)?,
                    attrs,
                )?);
            }
            Ok(())
        })?;
        out.ok_or(Error::Protocol("get acknowledged without an expectation"))
    }

    /// Deletes the expectation whose expected tuple is `tuple` (optionally pinned to `id`).
    pub fn delete_expect(&mut self, tuple: &Tuple, id: Option<u32>) -> Result<(), Error> {
        let seq = self.sock.next_seq();
        self.exp_key_msg(exp_msg::DELETE, seq, tuple, id)?;
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }

    fn exp_key_msg(
        &mut self,
        msg: u8,
        seq: u32,
        tuple: &Tuple,
        id: Option<u32>,
    ) -> Result<(), Error> {
        self.sbuf.clear();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK_EXP,
            msg,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            tuple.family().to_af(),
            0,
        );
        let mut o = VecOut::new(&mut self.sbuf);
        tuple.emit_as(&mut o, cta::EXPECT_TUPLE);
        if let Some(id) = id {
            crate::wire::Out::u32_be(&mut o, cta::EXPECT_ID, id);
        }
        check(&o, "expectation key")?;
        finish_msg(&mut self.sbuf, start);
        Ok(())
    }

    /// Creates an expectation. It needs `master` (an existing connection's original tuple), `tuple`,
    /// `mask` and `timeout`; `helper` names the master's helper when the master has one.
    pub fn create_expect(&mut self, e: &Expect) -> Result<(), Error> {
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        let family = e
            .master
            .as_ref()
            .or(e.tuple.as_ref())
            .map_or(e.family, Tuple::family)
            .to_af();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK_EXP,
            exp_msg::NEW,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            family,
            0,
        );
        let mut o = VecOut::new(&mut self.sbuf);
        e.emit_attrs(&mut o);
        check(&o, "expectation")?;
        finish_msg(&mut self.sbuf, start);
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }

    /// Deletes every expectation (`family` `None`), or every expectation of one family.
    ///
    /// The kernel's expectation flush (`ctnetlink_del_expect` without a tuple or helper name) ignores the
    /// nfgenmsg family and version and removes every expectation of the namespace, so a one-family flush
    /// is done here as a dump of that family (the expectation dump does honour the family) followed by a
    /// delete of each by tuple and id; one that vanished in between is not an error.
    pub fn flush_expect(&mut self, family: Option<Family>) -> Result<(), Error> {
        if family.is_some() {
            let mut doomed = Vec::new();
            for x in self.dump_expect(family)? {
                let x = x?;
                if let Some(t) = x.tuple {
                    doomed.push((t, x.id));
                }
            }
            for (t, id) in &doomed {
                match self.delete_expect(t, *id) {
                    Ok(()) | Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        }
        let seq = self.sock.next_seq();
        self.sbuf.clear();
        let start = start_msg(
            &mut self.sbuf,
            NFNL_SUBSYS_CTNETLINK_EXP,
            exp_msg::DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            0,
            1,
        );
        finish_msg(&mut self.sbuf, start);
        self.sock.transact(&self.sbuf, seq, |_| Ok(()))
    }
}
