//! Rebuilds the crate when a migration is added: `refinery::embed_migrations!` (in `db`) reads
//! the directory at compile time, and cargo does not otherwise notice a new file in it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
