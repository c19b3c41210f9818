//! Storage code shared by the Diesel adapters, written once and compiled into
//! each of them (`#[path]` module), so PostgreSQL and SQLite run the same
//! queries. Each adapter crate supplies what differs:
//!
//! - `crate::schema`: the same tables and columns, with the backend's types;
//! - `crate::backend`: `Conn` and `Db`, the transaction flavours, row locks,
//!   how many ids one query may bind, and the mapping of driver errors onto
//!   the domain's `RepoError`.

pub mod addresses;
pub mod coupons;
pub mod customers;
pub mod error;
pub mod load;
pub mod oauth;
pub mod rows;
pub mod segments;
pub mod store;
