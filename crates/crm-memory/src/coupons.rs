//! `CouponRepository`.

use async_trait::async_trait;
use crm_domain::customer::{CouponHolding, CouponId, CouponRepository, CustomerId};
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::{events, stored, MemoryStore};

fn holding(coupon: i64, granted_at: OffsetDateTime) -> CouponHolding {
    CouponHolding {
        coupon_id: CouponId::new(coupon).expect("stored coupon ids are positive"),
        granted_at,
    }
}

#[async_trait]
impl CouponRepository for MemoryStore {
    async fn list_coupons(&self, customer: CustomerId) -> Result<Vec<CouponHolding>, RepoError> {
        let state = self.read();
        let record = state
            .customers
            .get(&customer.get())
            .ok_or(RepoError::NotFound)?;
        Ok(record
            .coupons
            .iter()
            .map(|(coupon, granted_at)| holding(*coupon, *granted_at))
            .collect())
    }

    async fn grant_coupon(
        &self,
        customer: CustomerId,
        coupon: CouponId,
        now: OffsetDateTime,
    ) -> Result<(CouponHolding, bool), RepoError> {
        let mut state = self.write_data().await;
        let record = state
            .customers
            .get_mut(&customer.get())
            .ok_or(RepoError::NotFound)?;
        match record.coupons.get(&coupon.get()) {
            Some(granted_at) => Ok((holding(coupon.get(), *granted_at), false)),
            None => {
                let now = stored(now);
                record.coupons.insert(coupon.get(), now);
                record.fields.updated_at = now;
                events::customer_updated(&mut state, now, customer.get());
                Ok((holding(coupon.get(), now), true))
            }
        }
    }

    async fn revoke_coupon(
        &self,
        customer: CustomerId,
        coupon: CouponId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let record = state
            .customers
            .get_mut(&customer.get())
            .ok_or(RepoError::NotFound)?;
        record
            .coupons
            .remove(&coupon.get())
            .ok_or(RepoError::NotFound)?;
        record.fields.updated_at = now;
        events::customer_updated(&mut state, now, customer.get());
        Ok(())
    }
}
