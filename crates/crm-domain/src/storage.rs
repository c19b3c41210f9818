//! Every storage port at once: what a complete storage adapter implements.

use crate::auth::{ClientStore, TokenStore};
use crate::customer::{AddressRepository, CouponRepository, CustomerRepository, HealthCheck};
use crate::event::EventRepository;
use crate::idempotency::IdempotencyStore;
use crate::segment::SegmentRepository;
use crate::webhook::WebhookRepository;

/// Every port of this crate. A complete storage adapter implements them
/// all, and implementing them is enough to be one (the blanket impl), so
/// code that wires services over one store, or checks adapters against
/// the ports' contracts, names this bound once.
pub trait Storage:
    CustomerRepository
    + AddressRepository
    + CouponRepository
    + SegmentRepository
    + EventRepository
    + IdempotencyStore
    + WebhookRepository
    + ClientStore
    + TokenStore
    + HealthCheck
{
}

impl<T> Storage for T where
    T: CustomerRepository
        + AddressRepository
        + CouponRepository
        + SegmentRepository
        + EventRepository
        + IdempotencyStore
        + WebhookRepository
        + ClientStore
        + TokenStore
        + HealthCheck
{
}
