//! `ipvsadm`: a drop-in for ipvsadm 1.31 (see `cli::ipvsadm`).
fn main() {
    cli::ipvsadm::run()
}
