//! The black-box HTTP suite: every rule of the API contract, tested over real
//! HTTP against a real database, one fresh database per test.

mod addresses;
mod conventions;
mod coupons;
mod customers;
mod filters;
mod oauth;
mod segments;
