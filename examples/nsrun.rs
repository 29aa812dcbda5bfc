//! nsrun, as an example: the same program as the `nsrun` binary (`src/bin/nsrun.rs`, built
//! with the default `cli` feature and installed by `cargo install --path .`), so that
//! `cargo run --example nsrun` works too.

#[path = "../src/bin/nsrun.rs"]
mod nsrun;

fn main() {
    nsrun::main()
}
