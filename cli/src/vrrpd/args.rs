//! The command line (clap derive), with the man page and completions generated from it.

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// The default configuration file, as keepalived's.
pub const DEFAULT_CONF: &str = "/etc/keepalived/keepalived.conf";
/// The default control socket.
pub const DEFAULT_SOCKET: &str = "/run/vrrpd.sock";

/// vrrpd: a VRRPv2/v3 router daemon reading keepalived.conf (keepalived 2.2.7's VRRP half).
#[derive(Debug, Parser)]
#[command(name = "vrrpd", version, about, long_about = None)]
pub struct Args {
    /// The keepalived configuration file.
    #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = DEFAULT_CONF, global = true)]
    pub file: PathBuf,
    /// Validate the configuration, print its notices and exit 0 (valid) or 1.
    #[arg(short = 't', long = "check-config")]
    pub check_config: bool,
    /// Run only the VRRP half (keepalived's `-P`): `virtual_server` blocks are skipped unread.
    #[arg(short = 'P', long = "vrrp-only", conflicts_with = "check_only")]
    pub vrrp_only: bool,
    /// Run only the LVS checker half (keepalived's `-C`): the `virtual_server` blocks; VRRP blocks are
    /// skipped unread.
    #[arg(short = 'C', long = "check-only")]
    pub check_only: bool,
    /// The control socket (mode 0600), read by `vrrpd status`.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,
    /// Log to syslog instead of stderr.
    #[arg(long)]
    pub syslog: bool,
    /// The configuration id that `@ID` lines are matched against (keepalived's `-i`).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,
    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub generate_man: bool,
    /// Print shell completions (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub generate_completions: Option<clap_complete::Shell>,
    /// A client request instead of running the daemon.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// Client commands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print the state of every instance and group of a running vrrpd.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The man page.
pub fn man_page() -> Vec<u8> {
    let mut out = Vec::new();
    let _ = clap_mangen::Man::new(Args::command()).render(&mut out);
    out
}

/// Completions for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Args::command(), "vrrpd", &mut out);
    out
}
