//! The customer use cases: the rules a write must keep before it reaches the
//! store, and the reading of pages.

use std::sync::Arc;

use super::address::AddressChanges;
use super::cursor::{CursorPage, CursorRequest};
use super::model::{
    Address, AddressId, CouponHolding, CouponId, Customer, CustomerChanges, CustomerFilter,
    CustomerSummary,
};
use super::ports::{AddressRepository, CouponRepository, CustomerRepository};
use super::values::CustomerId;
use crate::page::{Page, PageRequest};
use crate::time_util::now_micros;
use crate::Error;

/// Customers, their addresses and coupon holdings.
#[derive(Clone)]
pub struct CustomerService {
    customers: Arc<dyn CustomerRepository>,
    addresses: Arc<dyn AddressRepository>,
    coupons: Arc<dyn CouponRepository>,
}

impl CustomerService {
    pub fn new(
        customers: Arc<dyn CustomerRepository>,
        addresses: Arc<dyn AddressRepository>,
        coupons: Arc<dyn CouponRepository>,
    ) -> Self {
        Self {
            customers,
            addresses,
            coupons,
        }
    }

    /// Creates a customer; it needs at least one of mobile, e-mail or name.
    pub async fn create(&self, changes: CustomerChanges) -> Result<Customer, Error> {
        changes.check(None, ("", "", ""))?;
        Ok(self.customers.create(&changes, now_micros()).await?)
    }

    pub async fn get(&self, id: CustomerId) -> Result<Customer, Error> {
        Ok(self.customers.get(id).await?)
    }

    /// Applies `changes`; the result must still have a mobile, e-mail or name,
    /// and the customer cannot become its own referrer.
    ///
    /// The identity rule depends on the stored values; the store decides it
    /// as it writes (its contract), so the customer is not read first. It is
    /// read only when the changes already break another rule, so that the
    /// answer reports every broken rule at once.
    pub async fn update(
        &self,
        id: CustomerId,
        changes: CustomerChanges,
    ) -> Result<Customer, Error> {
        // Checked as if the stored customer had an identity: what fails here
        // fails whatever is stored.
        if changes.check(Some(id), ("-", "-", "-")).is_err() {
            let current = self.customers.get(id).await?;
            changes.check(
                Some(id),
                (&current.mobile, &current.email, &current.full_name),
            )?;
        }
        Ok(self.customers.update(id, &changes, now_micros()).await?)
    }

    pub async fn delete(&self, id: CustomerId) -> Result<(), Error> {
        Ok(self.customers.delete(id, now_micros()).await?)
    }

    /// One page of matching customers; a page past the last is `InvalidPage`.
    pub async fn list(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Page<CustomerSummary>, Error> {
        let result = self.customers.list(filter, page).await?;
        if !page.exists_for(result.count) {
            return Err(Error::InvalidPage);
        }
        Ok(result)
    }

    /// One cursor page of matching customers (`filter.ordering` must be an
    /// `id` or `updated_at` ordering: `ordering` error otherwise). A forward
    /// page in `updated_at` order leaves out customers updated within the
    /// last `settle`, the longest a write may take from reading the clock to
    /// committing; they come in a later page.
    pub async fn cursor_page(
        &self,
        filter: &CustomerFilter,
        mut request: CursorRequest,
        settle: std::time::Duration,
    ) -> Result<CursorPage, Error> {
        let ordering = super::cursor::cursor_ordering(filter.ordering)
            .map_err(|message| Error::invalid("ordering", message))?;
        if request.position.is_some_and(|p| !p.fits(ordering)) {
            return Err(Error::NotFound);
        }
        request.settled_before = (request.must_settle(ordering)
            && super::cursor::by_update_time(ordering))
        .then(|| now_micros() - crate::time_util::span(settle));
        Ok(self.customers.cursor_page(filter, &request).await?)
    }

    pub async fn list_addresses(&self, customer: CustomerId) -> Result<Vec<Address>, Error> {
        Ok(self.addresses.list_addresses(customer).await?)
    }

    pub async fn get_address(
        &self,
        customer: CustomerId,
        address: AddressId,
    ) -> Result<Address, Error> {
        Ok(self.addresses.get_address(customer, address).await?)
    }

    /// Adds an address; every required field must be given.
    pub async fn create_address(
        &self,
        customer: CustomerId,
        changes: AddressChanges,
    ) -> Result<Address, Error> {
        // An unknown customer is a 404 even when the body is incomplete.
        let complete = changes.check_complete();
        if complete.is_err() {
            self.addresses.list_addresses(customer).await?;
        }
        complete?;
        Ok(self
            .addresses
            .create_address(customer, &changes, now_micros())
            .await?)
    }

    /// Changes an address. With `complete`, every required field must be given
    /// (a full replacement); otherwise only the given fields change.
    pub async fn update_address(
        &self,
        customer: CustomerId,
        address: AddressId,
        changes: AddressChanges,
        complete: bool,
    ) -> Result<Address, Error> {
        if complete {
            if let Err(errors) = changes.check_complete() {
                self.addresses.get_address(customer, address).await?;
                return Err(errors.into());
            }
        }
        Ok(self
            .addresses
            .update_address(customer, address, &changes, now_micros())
            .await?)
    }

    pub async fn delete_address(
        &self,
        customer: CustomerId,
        address: AddressId,
    ) -> Result<(), Error> {
        Ok(self
            .addresses
            .delete_address(customer, address, now_micros())
            .await?)
    }

    pub async fn list_coupons(&self, customer: CustomerId) -> Result<Vec<CouponHolding>, Error> {
        Ok(self.coupons.list_coupons(customer).await?)
    }

    /// Grants a coupon; returns the holding and whether it is new.
    pub async fn grant_coupon(
        &self,
        customer: CustomerId,
        coupon: CouponId,
    ) -> Result<(CouponHolding, bool), Error> {
        Ok(self
            .coupons
            .grant_coupon(customer, coupon, now_micros())
            .await?)
    }

    pub async fn revoke_coupon(&self, customer: CustomerId, coupon: CouponId) -> Result<(), Error> {
        Ok(self
            .coupons
            .revoke_coupon(customer, coupon, now_micros())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::ports::{
        MockAddressRepository, MockCouponRepository, MockCustomerRepository,
    };
    use crate::customer::values::{FullName, Gender, Mobile};
    use crate::customer::{Profile, Statistics};
    use crate::{FieldErrors, RepoError};
    use time::macros::datetime;

    fn id(n: i64) -> CustomerId {
        CustomerId::new(n).unwrap()
    }

    fn stored(n: i64, mobile: &str, name: &str) -> Customer {
        let t = datetime!(2020-01-01 0:00 UTC);
        Customer {
            id: id(n),
            mobile: mobile.into(),
            full_name: name.into(),
            gender: Gender::Unknown,
            email: String::new(),
            birthday: None,
            avatar: String::new(),
            note: String::new(),
            accepts_marketing: false,
            referral_code: String::new(),
            referrer: None,
            multipass_identifier: None,
            wechat_nickname: None,
            profile: Profile::default(),
            statistics: Statistics::default(),
            tags: vec![],
            addresses: vec![],
            segments: vec![],
            metafields: vec![],
            created_at: t,
            updated_at: t,
        }
    }

    fn service(
        customers: MockCustomerRepository,
        addresses: MockAddressRepository,
    ) -> CustomerService {
        CustomerService::new(
            Arc::new(customers),
            Arc::new(addresses),
            Arc::new(MockCouponRepository::new()),
        )
    }

    #[tokio::test]
    async fn create_without_identity_never_reaches_the_store() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_create().never();
        let err = service(repo, MockAddressRepository::new())
            .create(CustomerChanges::default())
            .await
            .unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        assert!(errors.contains(FieldErrors::NON_FIELD));
    }

    #[tokio::test]
    async fn create_passes_valid_changes_to_the_store() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_create()
            .withf(|c, _| c.full_name.as_ref().map(FullName::as_str) == Some("Ann"))
            .times(1)
            .returning(|_, _| Ok(stored(1, "", "Ann")));
        let changes = CustomerChanges {
            full_name: Some(FullName::parse("Ann").unwrap()),
            ..Default::default()
        };
        let created = service(repo, MockAddressRepository::new())
            .create(changes)
            .await
            .unwrap();
        assert_eq!(created.id, id(1));
    }

    #[tokio::test]
    async fn duplicate_from_the_store_is_a_field_error() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_create()
            .returning(|_, _| Err(RepoError::Duplicate { field: "mobile" }));
        let changes = CustomerChanges {
            mobile: Some(Mobile::parse("13000000000").unwrap()),
            ..Default::default()
        };
        let err = service(repo, MockAddressRepository::new())
            .create(changes)
            .await
            .unwrap_err();
        let Error::Invalid(errors) = err else {
            panic!("expected Invalid")
        };
        assert!(errors.contains("mobile"));
    }

    #[tokio::test]
    async fn update_leaves_the_identity_rule_to_the_store_without_reading() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_get().never();
        repo.expect_update().times(1).returning(|_, _, _| {
            Err(RepoError::Rejected(FieldErrors::single(
                FieldErrors::NON_FIELD,
                crate::customer::model::NO_IDENTITY,
            )))
        });
        let changes = CustomerChanges {
            mobile: Some(None),
            ..Default::default()
        };
        let err = service(repo, MockAddressRepository::new())
            .update(id(3), changes)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(ref e) if e.contains(FieldErrors::NON_FIELD)));
    }

    #[tokio::test]
    async fn update_reports_self_referral_and_lost_identity_together() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_get().returning(|_| Ok(stored(3, "12345", "")));
        repo.expect_update().never();
        let changes = CustomerChanges {
            mobile: Some(None),
            referrer: Some(Some(id(3))),
            ..Default::default()
        };
        let err = service(repo, MockAddressRepository::new())
            .update(id(3), changes)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref e) if e.contains(FieldErrors::NON_FIELD) && e.contains("referrer"))
        );
    }

    #[tokio::test]
    async fn update_refuses_self_referral() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_get().returning(|_| Ok(stored(3, "12345", "")));
        repo.expect_update().never();
        let changes = CustomerChanges {
            referrer: Some(Some(id(3))),
            ..Default::default()
        };
        let err = service(repo, MockAddressRepository::new())
            .update(id(3), changes)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(ref e) if e.contains("referrer")));
    }

    #[tokio::test]
    async fn update_of_missing_customer_is_not_found() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_update()
            .returning(|_, _, _| Err(RepoError::NotFound));
        let err = service(repo, MockAddressRepository::new())
            .update(id(9), CustomerChanges::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound));
    }

    #[tokio::test]
    async fn page_past_the_end_is_invalid() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_list().returning(|_, page| {
            Ok(Page {
                count: 10,
                items: vec![],
                request: page,
            })
        });
        let svc = service(repo, MockAddressRepository::new());
        let page2 = PageRequest::new(2, Some(10)).unwrap();
        assert!(matches!(
            svc.list(&CustomerFilter::default(), page2).await,
            Err(Error::InvalidPage)
        ));
    }

    #[tokio::test]
    async fn empty_first_page_is_fine() {
        let mut repo = MockCustomerRepository::new();
        repo.expect_list().returning(|_, page| {
            Ok(Page {
                count: 0,
                items: vec![],
                request: page,
            })
        });
        let svc = service(repo, MockAddressRepository::new());
        let page = svc
            .list(&CustomerFilter::default(), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.count, 0);
    }

    #[tokio::test]
    async fn incomplete_address_is_refused_before_the_store() {
        let mut addresses = MockAddressRepository::new();
        addresses.expect_list_addresses().returning(|_| Ok(vec![]));
        addresses.expect_create_address().never();
        let err = service(MockCustomerRepository::new(), addresses)
            .create_address(id(1), AddressChanges::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(ref e) if e.contains("city")));
    }

    #[tokio::test]
    async fn incomplete_address_for_unknown_customer_is_not_found() {
        let mut addresses = MockAddressRepository::new();
        addresses
            .expect_list_addresses()
            .returning(|_| Err(RepoError::NotFound));
        let err = service(MockCustomerRepository::new(), addresses)
            .create_address(id(1), AddressChanges::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound));
    }

    #[tokio::test]
    async fn partial_address_update_skips_completeness() {
        let mut addresses = MockAddressRepository::new();
        addresses
            .expect_update_address()
            .times(1)
            .returning(|_, _, _, _| Err(RepoError::NotFound));
        let err = service(MockCustomerRepository::new(), addresses)
            .update_address(
                id(1),
                AddressId::new(2).unwrap(),
                AddressChanges::default(),
                false,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound));
    }
}
