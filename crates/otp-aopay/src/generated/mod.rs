//! Generated from `spec/*.toml` by `cargo xtask codegen`.
pub mod codes;
pub mod verify_codes;
