//! The CRM core: customers, their addresses, tags, coupon holdings and segments,
//! as validated value types, port traits and the services that hold the rules.
//!
//! This crate does no I/O and knows no framework: no HTTP, no SQL, no JSON.
//! Adapters (`crm-postgres`, `crm-http`, ...) depend on it, never the reverse.

pub mod auth;
pub mod consistency;
pub mod customer;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod page;
pub mod segment;
pub mod storage;
pub mod text;
pub mod time_util;
pub mod webhook;

pub use error::{Error, FieldErrors, RepoError};
pub use storage::Storage;
