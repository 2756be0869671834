//! `vrrpd`: a VRRP router daemon reading keepalived.conf (see `cli::vrrpd`).
fn main() {
    std::process::exit(cli::vrrpd::run());
}
