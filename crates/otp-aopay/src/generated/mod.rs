//! Generated from `spec/codes.toml` by `cargo xtask codegen`.
pub mod codes;
