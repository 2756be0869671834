//! `conntrack`: drop-in for conntrack-tools 1.4.7. See `cli::conntrack`.
fn main() {
    std::process::exit(cli::conntrack::run());
}
