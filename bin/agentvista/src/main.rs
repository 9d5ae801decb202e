//! The `agentvista` binary. Configuration, CLI and wiring live here; logic lives in the crates.

fn main() {
    eprintln!(
        "agentvista {}: the HTTP server arrives with the server change (issue 4); \
         the key format and hashing are ready in the agentvista-keys crate.",
        env!("CARGO_PKG_VERSION")
    );
}
