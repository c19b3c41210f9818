//! The storage ports the customer services need. Adapters implement them;
//! the shared contract suite checks every adapter against these contracts.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::address::AddressChanges;
use super::cursor::{CursorPage, CursorRequest};
use super::model::{
    Address, AddressId, CouponHolding, CouponId, Customer, CustomerChanges, CustomerFilter,
    CustomerSummary,
};
use super::values::CustomerId;
use crate::page::{Page, PageRequest};
use crate::RepoError;

/// Stores customers with their tags, metafields and profile.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CustomerRepository: Send + Sync + 'static {
    /// Creates a customer from `changes` (values left out take their defaults),
    /// with `created_at` and `updated_at` set to `now`, in one transaction.
    ///
    /// MUST return `Duplicate { field }` when another customer has the same
    /// non-blank `mobile`, the same non-blank `email` compared
    /// case-insensitively, the same non-blank `referral_code` or the same
    /// `multipass_identifier` — decided by the store's constraints, so that of
    /// two racing creates exactly one succeeds. MUST return `Rejected` with a
    /// `referrer` error when the referrer does not exist. On any error nothing
    /// is stored.
    ///
    /// Every write of this trait and of [`AddressRepository`] and
    /// [`CouponRepository`] MUST record its events (`crate::event`) in its
    /// own transaction, so that a refused write records none and a committed
    /// one always has them, each with `created_at` = `now`. Here:
    /// `customer.created` with the customer as returned.
    async fn create(
        &self,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError>;

    /// MUST return the whole customer, with tags sorted, addresses default
    /// first then by id, segments and metafields, and live referral figures;
    /// `NotFound` when there is no such customer.
    async fn get(&self, id: CustomerId) -> Result<Customer, RepoError>;

    /// Applies `changes` to the customer `id` and sets `updated_at` to `now`,
    /// in one transaction; only the given values are written. A given tag set
    /// or metafield list replaces the stored one. MUST return `NotFound` when
    /// there is no such customer, and `Duplicate` / `Rejected` as `create`
    /// does; on any error nothing is changed.
    ///
    /// Events: `customer.updated` with the customer as returned.
    async fn update(
        &self,
        id: CustomerId,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError>;

    /// Deletes the customer with its addresses, tags, metafields, coupon
    /// holdings and segment memberships, and clears `referrer` (and sets
    /// `updated_at` to `now`) on the customers it referred, in one
    /// transaction. MUST return `NotFound` when there is no such customer.
    ///
    /// Events: `customer.deleted`, then `customer.updated` for each customer
    /// it referred, by id.
    async fn delete(&self, id: CustomerId, now: OffsetDateTime) -> Result<(), RepoError>;

    /// One page of the customers matching `filter`, in its ordering, with the
    /// exact count of all matches. When the page lies past the last one it
    /// MUST return the count with no items. The cost MUST NOT grow with the
    /// number of customers on the page in queries (no query per row).
    async fn list(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Page<CustomerSummary>, RepoError>;

    /// One cursor page of the customers matching `filter`, in
    /// `filter.ordering` (an `id` or `updated_at` ordering), ties broken by
    /// id in the same direction: at most `request.size` customers after
    /// `request.position` (before it, nearest last, when `backward`; the
    /// items still come in the ordering), each with its position, and
    /// whether more lie beyond in the direction read. MUST seek on the
    /// ordering's index (no offset: the cost does not grow with depth).
    /// A forward page in `id` or `updated_at` order MUST NOT pass a
    /// position behind which a write in progress could still commit: it
    /// waits for the writes in progress or stops before them, and honours
    /// `request.settled_before`.
    async fn cursor_page(
        &self,
        filter: &CustomerFilter,
        request: &CursorRequest,
    ) -> Result<CursorPage, RepoError>;
}

/// Stores customers' addresses.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait AddressRepository: Send + Sync + 'static {
    /// The customer's addresses, default first, then by id. MUST return
    /// `NotFound` when the customer does not exist.
    async fn list_addresses(&self, customer: CustomerId) -> Result<Vec<Address>, RepoError>;

    /// MUST return `NotFound` when the customer does not exist or the address
    /// is not one of its addresses.
    async fn get_address(
        &self,
        customer: CustomerId,
        address: AddressId,
    ) -> Result<Address, RepoError>;

    /// Adds an address (all required fields are given) and touches the
    /// customer's `updated_at`. The customer's first address MUST become its
    /// default; an address created with `is_default` true MUST clear the flag
    /// on the others. One transaction; `NotFound` when the customer does not
    /// exist.
    ///
    /// Every write of this trait records `customer.updated` with the whole
    /// customer after the change, in its transaction.
    async fn create_address(
        &self,
        customer: CustomerId,
        changes: &AddressChanges,
        now: OffsetDateTime,
    ) -> Result<Address, RepoError>;

    /// Applies `changes`; setting `is_default` true MUST clear it on the
    /// customer's other addresses, in the same transaction.
    async fn update_address(
        &self,
        customer: CustomerId,
        address: AddressId,
        changes: &AddressChanges,
        now: OffsetDateTime,
    ) -> Result<Address, RepoError>;

    /// Removes the address. When it was the default and others remain, the
    /// oldest remaining one MUST become the default, in the same transaction.
    async fn delete_address(
        &self,
        customer: CustomerId,
        address: AddressId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;
}

/// Records which customers hold which coupons.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CouponRepository: Send + Sync + 'static {
    /// The customer's holdings by coupon id; `NotFound` when the customer does
    /// not exist.
    async fn list_coupons(&self, customer: CustomerId) -> Result<Vec<CouponHolding>, RepoError>;

    /// Records that the customer holds `coupon`, granted `now`. MUST be
    /// idempotent: when already held it returns the existing holding and
    /// `false`, changing nothing; a new holding returns `true`, sets the
    /// customer's `updated_at` to `now` and records `customer.updated` with
    /// the whole customer, in the same transaction. Two racing grants store
    /// one. `NotFound` when the customer does not exist.
    async fn grant_coupon(
        &self,
        customer: CustomerId,
        coupon: CouponId,
        now: OffsetDateTime,
    ) -> Result<(CouponHolding, bool), RepoError>;

    /// Removes the holding, sets the customer's `updated_at` to `now` and
    /// records `customer.updated`, in one transaction; `NotFound` when the
    /// customer does not hold it.
    async fn revoke_coupon(
        &self,
        customer: CustomerId,
        coupon: CouponId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;
}

/// How a store's connection pool is used right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open and waiting for work.
    pub idle: u32,
    /// Connections open in all.
    pub open: u32,
    /// The most connections the pool may open.
    pub max: u32,
}

/// Answers whether the store is reachable, and how busy it is.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait HealthCheck: Send + Sync + 'static {
    /// MUST return `Ok` only when the store answered a trivial query.
    async fn ping(&self) -> Result<(), RepoError>;

    /// The connection pool's state, for metrics.
    fn pool_state(&self) -> PoolState;
}
