/// The `addresses` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_addresses {
    () => {
        // `AddressRepository`. Every write locks the owning customer first, so the
        // one-default rule cannot be raced.

        use crate::backend::Conn;
        use crm_domain::customer::{
            Address, AddressChanges, AddressId, AddressRepository, CustomerId,
        };
        use crm_domain::RepoError;
        use diesel::prelude::*;
        use time::OffsetDateTime;

        use super::error::{fail, StoreResult};
        use super::load::{self, require_customer};
        use super::rows::AddressRow;
        use super::store::Store;
        use crate::schema::{addresses, customers};

        #[derive(AsChangeset)]
        #[diesel(table_name = addresses)]
        struct AddressChangeset<'a> {
            full_name: Option<&'a str>,
            mobile: Option<&'a str>,
            place_code: Option<&'a str>,
            province: Option<&'a str>,
            city: Option<&'a str>,
            district: Option<&'a str>,
            address1: Option<&'a str>,
            address2: Option<&'a str>,
            zip: Option<&'a str>,
            is_default: Option<bool>,
            updated_at: OffsetDateTime,
        }

        fn changeset(changes: &AddressChanges, now: OffsetDateTime) -> AddressChangeset<'_> {
            AddressChangeset {
                full_name: changes.full_name.as_deref(),
                mobile: changes.mobile.as_deref(),
                place_code: changes.place_code.as_deref(),
                province: changes.province.as_deref(),
                city: changes.city.as_deref(),
                district: changes.district.as_deref(),
                address1: changes.address1.as_deref(),
                address2: changes.address2.as_deref(),
                zip: changes.zip.as_deref(),
                is_default: changes.is_default,
                updated_at: now,
            }
        }

        fn find(conn: &mut Conn, customer: i64, address: i64) -> StoreResult<Address> {
            let row = addresses::table
                .filter(addresses::id.eq(address))
                .filter(addresses::customer_id.eq(customer))
                .select(AddressRow::as_select())
                .first::<AddressRow>(conn)
                .optional()?;
            match row {
                Some(row) => Ok(row.into()),
                None => fail(RepoError::NotFound),
            }
        }

        fn clear_default(conn: &mut Conn, customer: i64) -> StoreResult<()> {
            diesel::update(
                addresses::table
                    .filter(addresses::customer_id.eq(customer))
                    .filter(addresses::is_default),
            )
            .set(addresses::is_default.eq(false))
            .execute(conn)?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl AddressRepository for Store {
            async fn list_addresses(
                &self,
                customer: CustomerId,
            ) -> Result<Vec<Address>, RepoError> {
                self.read(move |conn| {
                    let id = customer.get();
                    require_customer(conn, id, false)?;
                    Ok(load::addresses_of(conn, &[id])?
                        .remove(&id)
                        .unwrap_or_default())
                })
                .await
            }

            async fn get_address(
                &self,
                customer: CustomerId,
                address: AddressId,
            ) -> Result<Address, RepoError> {
                self.read(move |conn| find(conn, customer.get(), address.get()))
                    .await
            }

            async fn create_address(
                &self,
                customer: CustomerId,
                changes: &AddressChanges,
                now: OffsetDateTime,
            ) -> Result<Address, RepoError> {
                let changes = changes.clone();
                self.write(move |conn| {
                    let customer = customer.get();
                    require_customer(conn, customer, true)?;
                    let existing: i64 = addresses::table
                        .filter(addresses::customer_id.eq(customer))
                        .count()
                        .get_result(conn)?;
                    let make_default = existing == 0 || changes.is_default == Some(true);
                    if make_default {
                        clear_default(conn, customer)?;
                    }
                    let mut values = changeset(&changes, now);
                    values.is_default = Some(make_default);
                    let id: i64 = diesel::insert_into(addresses::table)
                        .values((
                            addresses::customer_id.eq(customer),
                            addresses::full_name.eq(values.full_name.unwrap_or("")),
                            addresses::mobile.eq(values.mobile.unwrap_or("")),
                            addresses::place_code.eq(values.place_code.unwrap_or("")),
                            addresses::province.eq(values.province.unwrap_or("")),
                            addresses::city.eq(values.city.unwrap_or("")),
                            addresses::district.eq(values.district.unwrap_or("")),
                            addresses::address1.eq(values.address1.unwrap_or("")),
                            addresses::address2.eq(values.address2.unwrap_or("")),
                            addresses::zip.eq(values.zip.unwrap_or("")),
                            addresses::is_default.eq(make_default),
                            addresses::created_at.eq(now),
                            addresses::updated_at.eq(now),
                        ))
                        .returning(addresses::id)
                        .get_result(conn)?;
                    super::load::touch_customer(conn, customer, now)?;
                    super::events::customer_updated(conn, now, customer)?;
                    find(conn, customer, id)
                })
                .await
            }

            async fn update_address(
                &self,
                customer: CustomerId,
                address: AddressId,
                changes: &AddressChanges,
                now: OffsetDateTime,
            ) -> Result<Address, RepoError> {
                let changes = changes.clone();
                self.write(move |conn| {
                    let (customer, address) = (customer.get(), address.get());
                    require_customer(conn, customer, true)?;
                    let current = find(conn, customer, address)?;
                    let mut changes = changes;
                    if changes.is_default == Some(false) && current.is_default {
                        // A customer with addresses always has a default: it moves
                        // by making another address the default, not by clearing it.
                        changes.is_default = None;
                    }
                    if changes.is_default == Some(true) {
                        clear_default(conn, customer)?;
                    }
                    diesel::update(addresses::table.find(address))
                        .set(changeset(&changes, now))
                        .execute(conn)?;
                    super::load::touch_customer(conn, customer, now)?;
                    super::events::customer_updated(conn, now, customer)?;
                    find(conn, customer, address)
                })
                .await
            }

            async fn delete_address(
                &self,
                customer: CustomerId,
                address: AddressId,
                now: OffsetDateTime,
            ) -> Result<(), RepoError> {
                self.write(move |conn| {
                    let (customer, address) = (customer.get(), address.get());
                    require_customer(conn, customer, true)?;
                    let removed = find(conn, customer, address)?;
                    diesel::delete(addresses::table.find(address)).execute(conn)?;
                    if removed.is_default {
                        let oldest: Option<i64> = addresses::table
                            .filter(addresses::customer_id.eq(customer))
                            .order(addresses::id)
                            .select(addresses::id)
                            .first(conn)
                            .optional()?;
                        if let Some(oldest) = oldest {
                            diesel::update(addresses::table.find(oldest))
                                .set((
                                    addresses::is_default.eq(true),
                                    addresses::updated_at.eq(now),
                                ))
                                .execute(conn)?;
                        }
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
