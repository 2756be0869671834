//! `ctsyncd`: conntrack state sync, a drop-in for conntrackd 1.4.7's sync mode. See `cli::ctsyncd`.
fn main() {
    std::process::exit(cli::ctsyncd::run());
}
