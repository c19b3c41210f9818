//! `AddressRepository`: the one-default rule under the store's one lock.

use async_trait::async_trait;
use crm_domain::customer::{Address, AddressChanges, AddressId, AddressRepository, CustomerId};
use crm_domain::RepoError;
use time::OffsetDateTime;

use crate::customers::addresses_of;
use crate::{events, stored, CustomerRecord, MemoryStore};

/// Writes the given values of `changes` into `address` (not `is_default`).
fn apply(address: &mut Address, changes: &AddressChanges, now: OffsetDateTime) {
    let pairs = [
        (&changes.full_name, &mut address.full_name),
        (&changes.mobile, &mut address.mobile),
        (&changes.place_code, &mut address.place_code),
        (&changes.province, &mut address.province),
        (&changes.city, &mut address.city),
        (&changes.district, &mut address.district),
        (&changes.address1, &mut address.address1),
        (&changes.address2, &mut address.address2),
        (&changes.zip, &mut address.zip),
    ];
    for (given, slot) in pairs {
        if let Some(value) = given {
            slot.clone_from(value);
        }
    }
    address.updated_at = now;
}

/// Clears the default flag on every address of `record` (their `updated_at`
/// stays, as in the SQL stores).
fn clear_default(record: &mut CustomerRecord) {
    for address in record.addresses.values_mut() {
        address.is_default = false;
    }
}

#[async_trait]
impl AddressRepository for MemoryStore {
    async fn list_addresses(&self, customer: CustomerId) -> Result<Vec<Address>, RepoError> {
        let state = self.read();
        let record = state
            .customers
            .get(&customer.get())
            .ok_or(RepoError::NotFound)?;
        Ok(addresses_of(record))
    }

    async fn get_address(
        &self,
        customer: CustomerId,
        address: AddressId,
    ) -> Result<Address, RepoError> {
        let state = self.read();
        state
            .customers
            .get(&customer.get())
            .and_then(|record| record.addresses.get(&address.get()))
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn create_address(
        &self,
        customer: CustomerId,
        changes: &AddressChanges,
        now: OffsetDateTime,
    ) -> Result<Address, RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        if !state.customers.contains_key(&customer.get()) {
            return Err(RepoError::NotFound);
        }
        state.last_address_id += 1;
        let id = state.last_address_id;
        let record = state
            .customers
            .get_mut(&customer.get())
            .expect("checked above");
        let is_default = record.addresses.is_empty() || changes.is_default == Some(true);
        if is_default {
            clear_default(record);
        }
        let mut address = Address {
            id: AddressId::new(id).expect("ids come from a sequence starting at 1"),
            customer_id: customer,
            full_name: String::new(),
            mobile: String::new(),
            place_code: String::new(),
            province: String::new(),
            city: String::new(),
            district: String::new(),
            address1: String::new(),
            address2: String::new(),
            zip: String::new(),
            is_default,
            created_at: now,
            updated_at: now,
        };
        apply(&mut address, changes, now);
        record.addresses.insert(id, address.clone());
        record.fields.updated_at = now;
        events::customer_updated(&mut state, now, customer.get());
        Ok(address)
    }

    async fn update_address(
        &self,
        customer: CustomerId,
        address: AddressId,
        changes: &AddressChanges,
        now: OffsetDateTime,
    ) -> Result<Address, RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let record = state
            .customers
            .get_mut(&customer.get())
            .ok_or(RepoError::NotFound)?;
        let mut updated = record
            .addresses
            .get(&address.get())
            .cloned()
            .ok_or(RepoError::NotFound)?;
        apply(&mut updated, changes, now);
        // A customer with addresses always has a default: `false` on the
        // default changes nothing; it moves by making another the default.
        if changes.is_default == Some(true) {
            clear_default(record);
            updated.is_default = true;
        }
        record.addresses.insert(address.get(), updated.clone());
        record.fields.updated_at = now;
        events::customer_updated(&mut state, now, customer.get());
        Ok(updated)
    }

    async fn delete_address(
        &self,
        customer: CustomerId,
        address: AddressId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let now = stored(now);
        let mut state = self.write_data().await;
        let record = state
            .customers
            .get_mut(&customer.get())
            .ok_or(RepoError::NotFound)?;
        let removed = record
            .addresses
            .remove(&address.get())
            .ok_or(RepoError::NotFound)?;
        if removed.is_default {
            // The oldest remaining address (the lowest id) becomes the default.
            if let Some(oldest) = record.addresses.values_mut().next() {
                oldest.is_default = true;
                oldest.updated_at = now;
            }
        }
        record.fields.updated_at = now;
        events::customer_updated(&mut state, now, customer.get());
        Ok(())
    }
}
