//! nonstopd: the channel supervisor. Until the supervisor issue lands it only
//! reports its version, so packaging and scripts can already call it.

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        None | Some("--version") | Some("-V") => {
            println!("nonstopd {}", env!("CARGO_PKG_VERSION"));
        }
        Some(other) => {
            eprintln!(
                "nonstopd {}: '{other}' is not supported yet; only --version is",
                env!("CARGO_PKG_VERSION")
            );
            std::process::exit(2);
        }
    }
}
