//! Customers: who they are, their addresses, tags, metafields and coupon
//! holdings.

pub mod address;
pub mod cursor;
pub mod model;
pub mod ports;
pub mod service;
pub mod values;

pub use address::AddressChanges;
pub use cursor::{CursorPage, CursorPosition, CursorRequest};
pub use model::{
    Address, AddressId, Cents, CouponHolding, CouponId, Customer, CustomerChanges, CustomerFilter,
    CustomerOrdering, CustomerSummary, Statistics,
};
pub use ports::{AddressRepository, CouponRepository, CustomerRepository, HealthCheck, PoolState};
pub use service::CustomerService;
pub use values::{
    Avatar, Birthday, CustomerId, Email, FullName, Gender, Metafield, Metafields, Mobile,
    MultipassIdentifier, Note, Profile, ProfilePatch, ReferralCode, Tag, TagSet,
};
