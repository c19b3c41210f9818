/// The `coupons` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_coupons {
    () => {
        // `CouponRepository` on both backends.

        use crm_domain::customer::{CouponHolding, CouponId, CouponRepository, CustomerId};
        use crm_domain::RepoError;
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::fail;
        use super::load::require_customer;
        use super::rows::CouponRow;
        use super::store::Store;
        use crate::schema::customer_coupons;

        #[async_trait::async_trait]
        impl CouponRepository for Store {
            async fn list_coupons(
                &self,
                customer: CustomerId,
            ) -> Result<Vec<CouponHolding>, RepoError> {
                self.read(move |conn| {
                    let customer = customer.get();
                    require_customer(conn, customer, false)?;
                    let rows: Vec<CouponRow> = customer_coupons::table
                        .filter(customer_coupons::customer_id.eq(customer))
                        .order(customer_coupons::coupon_id)
                        .select(CouponRow::as_select())
                        .load(conn)?;
                    Ok(rows.into_iter().map(CouponHolding::from).collect())
                })
                .await
            }

            async fn grant_coupon(
                &self,
                customer: CustomerId,
                coupon: CouponId,
                now: OffsetDateTime,
            ) -> Result<(CouponHolding, bool), RepoError> {
                self.write(move |conn| {
                    let (customer, coupon) = (customer.get(), coupon.get());
                    require_customer(conn, customer, false)?;
                    // The primary key decides a race between two grants.
                    let inserted = diesel::insert_into(customer_coupons::table)
                        .values((
                            customer_coupons::customer_id.eq(customer),
                            customer_coupons::coupon_id.eq(coupon),
                            customer_coupons::granted_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                    if inserted == 1 {
                        super::load::touch_customer(conn, customer, now)?;
                        super::events::customer_updated(conn, now, customer)?;
                    }
                    let row: CouponRow = customer_coupons::table
                        .find((customer, coupon))
                        .select(CouponRow::as_select())
                        .first(conn)?;
                    Ok((row.into(), inserted == 1))
                })
                .await
            }

            async fn revoke_coupon(
                &self,
                customer: CustomerId,
                coupon: CouponId,
                now: OffsetDateTime,
            ) -> Result<(), RepoError> {
                self.write(move |conn| {
                    let customer = customer.get();
                    let deleted =
                        diesel::delete(customer_coupons::table.find((customer, coupon.get())))
                            .execute(conn)?;
                    if deleted == 0 {
                        return fail(RepoError::NotFound);
                    }
                    super::load::touch_customer(conn, customer, now)?;
                    super::events::customer_updated(conn, now, customer)?;
                    Ok(())
                })
                .await
            }
        }
    };
}
