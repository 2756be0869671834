//! [`Op`]: one change to the IPVS tables, and its request codec.

use super::ipvs::{
    Daemon, DaemonState, Destination, IPVS_GENL_VERSION, Service, ServiceKey, Timeouts, attr, cmd,
    find_top, parse_key,
};
use super::{GENL_HDRLEN, GenlHeader, NLM_F_ACK, NLM_F_REQUEST, Writer, build_request};
use crate::error::{DecodeError, EmitError};
use std::net::IpAddr;

/// One change to the IPVS tables; [`Ipvs::apply`](crate::Ipvs::apply) pipelines many of them.
///
/// As a codec, an `Op` is the genetlink payload of its request (the 4-byte genetlink header, then the
/// attributes). Requests carry no counters: a [`Service`] or [`Destination`] read from the kernel is sent
/// back without its stats and connection counts, but with its unknown attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Add a service (`ipvsadm -A`).
    AddService(Service),
    /// Edit a service (`-E`).
    EditService(Service),
    /// Delete a service and its destinations (`-D`).
    DelService(ServiceKey),
    /// Add a destination to a service (`-a`).
    AddDest(ServiceKey, Destination),
    /// Edit a destination (`-e`).
    EditDest(ServiceKey, Destination),
    /// Delete a destination (`-d`): service, address, port.
    DelDest(ServiceKey, IpAddr, u16),
    /// Delete every service (`-C`).
    Flush,
    /// Zero the counters of one service, or of all (`-Z`).
    Zero(Option<ServiceKey>),
    /// Set timeouts; zeros leave a value unchanged (`--set`).
    SetTimeouts(Timeouts),
    /// Start a sync daemon (`--start-daemon`).
    StartDaemon(Daemon),
    /// Stop a sync daemon (`--stop-daemon`).
    StopDaemon(DaemonState),
}

impl Op {
    fn cmd(&self) -> u8 {
        match self {
            Op::AddService(_) => cmd::NEW_SERVICE,
            Op::EditService(_) => cmd::SET_SERVICE,
            Op::DelService(_) => cmd::DEL_SERVICE,
            Op::AddDest(..) => cmd::NEW_DEST,
            Op::EditDest(..) => cmd::SET_DEST,
            Op::DelDest(..) => cmd::DEL_DEST,
            Op::Flush => cmd::FLUSH,
            Op::Zero(_) => cmd::ZERO,
            Op::SetTimeouts(_) => cmd::SET_CONFIG,
            Op::StartDaemon(_) => cmd::NEW_DAEMON,
            Op::StopDaemon(_) => cmd::DEL_DAEMON,
        }
    }

    /// Writes the request's attributes.
    fn write_body(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        match self {
            Op::AddService(s) | Op::EditService(s) => s.write_nested(w, false),
            Op::DelService(k) => k.write_nested(w),
            Op::AddDest(k, d) | Op::EditDest(k, d) => {
                k.write_nested(w)?;
                d.write_nested(w, false)
            }
            Op::DelDest(k, a, p) => {
                k.write_nested(w)?;
                Destination::write_key_nested(a, *p, w)
            }
            Op::Flush => Ok(()),
            Op::Zero(k) => match k {
                Some(k) => k.write_nested(w),
                None => Ok(()),
            },
            Op::SetTimeouts(t) => t.write(w),
            Op::StartDaemon(d) => d.write_nested(w, true),
            Op::StopDaemon(st) => Daemon::new(*st, "", 0).write_nested(w, false),
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EmitError> {
        w.header(
            &GenlHeader {
                cmd: self.cmd(),
                version: IPVS_GENL_VERSION,
            }
            .to_bytes(),
        )?;
        self.write_body(w)
    }

    /// The length of [`Op::emit`]'s output.
    pub fn buffer_len(&self) -> usize {
        let mut w = Writer::count();
        let _ = self.write(&mut w);
        w.len()
    }

    /// Writes the request's genetlink payload (header included); returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut w = Writer::slice(buf);
        match self.write(&mut w) {
            Ok(()) => Ok(w.len()),
            Err(e) => Err(w.fix("Op", e, self.buffer_len())),
        }
    }

    /// Appends the complete netlink request (with `NLM_F_ACK`) for the family id `family`.
    pub(crate) fn write_request(
        &self,
        family: u16,
        seq: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), EmitError> {
        build_request(
            out,
            family,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            GenlHeader {
                cmd: self.cmd(),
                version: IPVS_GENL_VERSION,
            },
            |w| self.write_body(w),
        )
    }

    /// Decodes a request's genetlink payload (header included), as [`Op::emit`] writes it.
    pub fn parse(genl_payload: &[u8]) -> Result<Self, DecodeError> {
        let genl = GenlHeader::parse(genl_payload)?;
        let body = genl_payload.get(GENL_HDRLEN..).unwrap_or_default();
        let need = |kind, what| find_top(body, kind)?.ok_or(DecodeError::Missing { what });
        let service = || need(attr::CMD_SERVICE, "IPVS_CMD_ATTR_SERVICE");
        let dest = || need(attr::CMD_DEST, "IPVS_CMD_ATTR_DEST");
        let daemon = || need(attr::CMD_DAEMON, "IPVS_CMD_ATTR_DAEMON");
        Ok(match genl.cmd {
            cmd::NEW_SERVICE | cmd::SET_SERVICE => {
                let a = service()?;
                let s = Service::parse_at(a.value, a.value_offset(), true)?;
                if genl.cmd == cmd::NEW_SERVICE {
                    Op::AddService(s)
                } else {
                    Op::EditService(s)
                }
            }
            cmd::DEL_SERVICE => Op::DelService(parse_key(&service()?)?),
            cmd::NEW_DEST | cmd::SET_DEST | cmd::DEL_DEST => {
                let k = parse_key(&service()?)?;
                let a = dest()?;
                let fallback = Some(k.family());
                let d = Destination::parse_at(a.value, a.value_offset(), fallback, true)?;
                match genl.cmd {
                    cmd::NEW_DEST => Op::AddDest(k, d),
                    cmd::SET_DEST => Op::EditDest(k, d),
                    _ => Op::DelDest(k, d.addr, d.port),
                }
            }
            cmd::FLUSH => Op::Flush,
            cmd::ZERO => Op::Zero(match find_top(body, attr::CMD_SERVICE)? {
                Some(a) => Some(parse_key(&a)?),
                None => None,
            }),
            cmd::SET_CONFIG => Op::SetTimeouts(Timeouts::parse_at(body, GENL_HDRLEN)?),
            cmd::NEW_DAEMON => {
                let a = daemon()?;
                Op::StartDaemon(Daemon::parse_at(a.value, a.value_offset())?)
            }
            cmd::DEL_DAEMON => {
                let a = daemon()?;
                Op::StopDaemon(Daemon::parse_at(a.value, a.value_offset())?.state)
            }
            other => {
                return Err(DecodeError::Invalid {
                    what: "IPVS request command",
                    offset: 0,
                    value: other.into(),
                });
            }
        })
    }
}
