//! `surreal start ...`, exactly as the official binary: SurrealDB's community composer
//! behind its own command line.

fn main() -> std::process::ExitCode {
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
