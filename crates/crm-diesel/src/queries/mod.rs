//! The query bodies, one `macro_rules!` per module of an adapter, expanded
//! by [`diesel_adapter!`](crate::diesel_adapter) in each adapter crate. They
//! name the adapter's items as `crate::schema`, `crate::backend` (generated
//! from its `Dialect`) and `super::{error, store, rows, load}`: `crate::` in
//! these bodies names the adapter crate on purpose.
#![allow(clippy::crate_in_macro_def)]

mod addresses;
mod coupons;
mod customers;
mod events;
mod idempotency;
mod load;
mod oauth;
mod rows;
mod schema;
mod segments;
mod webhooks;
