//! `global_defs { ... }`: the keys vrrpd uses, with keepalived 2.2.7's defaults.

use super::{ConfError, Item, Notice, err};
use std::time::Duration;
use vrrp_proto::Version;

/// What `global_defs` sets for every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalDefs {
    /// `router_id` (keepalived: the host name when unset).
    pub router_id: Option<String>,
    /// `vrrp_version`: 2 unless set (IPv6 instances always speak 3).
    pub vrrp_version: Version,
    /// `vrrp_garp_master_delay`: 5 s.
    pub garp_master_delay: Duration,
    /// `vrrp_garp_master_repeat`: 5.
    pub garp_master_repeat: u8,
    /// `vrrp_garp_master_refresh`: 0 (off).
    pub garp_master_refresh: Duration,
    /// `vrrp_garp_master_refresh_repeat`: 1.
    pub garp_master_refresh_repeat: u8,
    /// `vrrp_garp_interval`: delay between gratuitous ARPs of a burst (0).
    pub garp_interval: Duration,
    /// `vrrp_gna_interval`: delay between unsolicited NAs of a burst (0).
    pub gna_interval: Duration,
    /// `vrrp_lower_prio_no_advert`.
    pub lower_prio_no_advert: bool,
    /// `vrrp_check_unicast_src`.
    pub check_unicast_src: bool,
    /// `script_user USER [GROUP]`: who runs scripts that name no user (keepalived's default is the
    /// `keepalived_script` user if it exists, else root).
    pub script_user: Option<(String, Option<String>)>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            vrrp_version: Version::V2,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: 1,
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            lower_prio_no_advert: false,
            check_unicast_src: false,
            script_user: None,
            enable_script_security: false,
        }
    }
}

/// keepalived keys of `global_defs` that concern other parts of keepalived (mail, LVS, SNMP, D-Bus...):
/// accepted silently by vrrpd only when they cannot change VRRP behaviour.
const NOT_VRRP: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "lvs_id",
    "lvs_sync_daemon",
    "lvs_timeouts",
    "lvs_flush",
    "checker_priority",
    "enable_snmp_keepalived",
    "enable_snmp_checker",
    "enable_snmp_rfc",
    "enable_dbus",
];

/// Reads one `global_defs` block into `g` (several blocks add up, as in keepalived).
pub fn read(item: &Item, g: &mut GlobalDefs, notices: &mut Vec<Notice>) -> Result<(), ConfError> {
    let big = Duration::from_secs(100_000);
    for l in item.block()? {
        match l.name() {
            "router_id" => g.router_id = Some(l.value()?.text.clone()),
            "vrrp_version" => {
                g.vrrp_version = match l.value()?.text.as_str() {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    v => return err(l.pos(), format!("vrrp_version: {v:?} is neither 2 nor 3")),
                }
            }
            "vrrp_garp_master_delay" => {
                g.garp_master_delay = l.seconds(Duration::from_secs(255))?
            }
            "vrrp_garp_master_repeat" => g.garp_master_repeat = l.int(1..=255)?,
            "vrrp_garp_master_refresh" => g.garp_master_refresh = l.seconds(big)?,
            "vrrp_garp_master_refresh_repeat" => g.garp_master_refresh_repeat = l.int(1..=255)?,
            "vrrp_garp_interval" => g.garp_interval = l.seconds(Duration::from_secs(1))?,
            "vrrp_gna_interval" => g.gna_interval = l.seconds(Duration::from_secs(1))?,
            "vrrp_lower_prio_no_advert" => g.lower_prio_no_advert = l.flag()?,
            "vrrp_check_unicast_src" => g.check_unicast_src = true,
            "script_user" => {
                g.script_user = Some((
                    l.arg(0)?.text.clone(),
                    l.args.get(1).map(|w| w.text.clone()),
                ))
            }
            "enable_script_security" => g.enable_script_security = true,
            k if NOT_VRRP.contains(&k) => {}
            k => notices.push(Notice {
                pos: l.pos().clone(),
                msg: format!("global_defs: {k} is not implemented by vrrpd; ignored"),
            }),
        }
    }
    Ok(())
}
