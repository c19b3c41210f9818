/// The `load` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_load {
    () => {
        // Reading customers with their related data. Related rows for a whole set of
        // customers come in one query per kind (`WHERE customer_id = ANY($1)` on
        // PostgreSQL; in chunks of bindable size on SQLite), so a page costs the
        // same number of queries whatever its size.

        use std::collections::HashMap;

        use crate::backend::Conn;
        use crm_domain::customer::{Address, Customer, CustomerSummary, Metafield};
        use crm_domain::segment::{SegmentId, SegmentRef};
        use crm_domain::RepoError;
        use diesel::dsl::sql;
        use diesel::prelude::*;
        use diesel::sql_types::BigInt;
        use $crate::document::__private::{serde, serde_json};

        use super::error::{fail, StoreError, StoreResult};
        use super::rows::{customer_id, AddressRow, CustomerRow, SummaryRow};
        use crate::schema::{
            addresses, customer_metafields, customer_tags, customers, segment_memberships, segments,
        };

        /// `ids` in pieces small enough to bind in one query on this backend.
        pub fn id_chunks(ids: &[i64]) -> std::slice::Chunks<'_, i64> {
            ids.chunks(crate::backend::MAX_BIND_IDS)
        }

        pub fn tags_of(conn: &mut Conn, ids: &[i64]) -> StoreResult<HashMap<i64, Vec<String>>> {
            let mut rows: Vec<(i64, String)> = Vec::new();
            for chunk in id_chunks(ids) {
                rows.extend(
                    customer_tags::table
                        .filter(customer_tags::customer_id.eq_any(chunk))
                        .order((customer_tags::customer_id, customer_tags::tag))
                        .select((customer_tags::customer_id, customer_tags::tag))
                        .load::<(i64, String)>(conn)?,
                );
            }
            // Sorted here, not by the database's collation: tags compare by bytes
            // everywhere, as the domain's `TagSet` orders them.
            let mut tags = group(rows);
            for list in tags.values_mut() {
                list.sort_unstable();
            }
            Ok(tags)
        }

        pub fn addresses_of(
            conn: &mut Conn,
            ids: &[i64],
        ) -> StoreResult<HashMap<i64, Vec<Address>>> {
            let mut rows: Vec<AddressRow> = Vec::new();
            for chunk in id_chunks(ids) {
                rows.extend(
                    addresses::table
                        .filter(addresses::customer_id.eq_any(chunk))
                        .order((
                            addresses::customer_id,
                            addresses::is_default.desc(),
                            addresses::id,
                        ))
                        .select(AddressRow::as_select())
                        .load::<AddressRow>(conn)?,
                );
            }
            Ok(group(
                rows.into_iter().map(|r| (r.customer_id, Address::from(r))),
            ))
        }

        pub fn segments_of(
            conn: &mut Conn,
            ids: &[i64],
        ) -> StoreResult<HashMap<i64, Vec<SegmentRef>>> {
            let mut rows: Vec<(i64, i64, String)> = Vec::new();
            for chunk in id_chunks(ids) {
                rows.extend(
                    segment_memberships::table
                        .inner_join(segments::table)
                        .filter(segment_memberships::customer_id.eq_any(chunk))
                        .order((segment_memberships::customer_id, segments::id))
                        .select((
                            segment_memberships::customer_id,
                            segments::id,
                            segments::title,
                        ))
                        .load::<(i64, i64, String)>(conn)?,
                );
            }
            Ok(group(rows.into_iter().map(|(customer, id, title)| {
                let id = SegmentId::new(id).expect("stored segment ids are positive");
                (customer, SegmentRef { id, title })
            })))
        }

        fn group<T>(rows: impl IntoIterator<Item = (i64, T)>) -> HashMap<i64, Vec<T>> {
            let mut map: HashMap<i64, Vec<T>> = HashMap::new();
            for (key, value) in rows {
                map.entry(key).or_default().push(value);
            }
            map
        }

        /// List items for `ids`, in the order of `ids`; ids with no customer are
        /// skipped. With `with_segments` false, `segments` is left empty.
        pub fn summaries(
            conn: &mut Conn,
            ids: &[i64],
            with_segments: bool,
        ) -> StoreResult<Vec<CustomerSummary>> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            if let Some(document) = crate::backend::summaries_document(conn, ids, with_segments) {
                let items: Vec<SummaryDocument> = decode(&document?)?;
                return Ok(items
                    .into_iter()
                    .map(SummaryDocument::into_summary)
                    .collect());
            }
            let mut rows: Vec<SummaryRow> = Vec::new();
            for chunk in id_chunks(ids) {
                rows.extend(
                    customers::table
                        .filter(customers::id.eq_any(chunk))
                        .select(SummaryRow::as_select())
                        .load::<SummaryRow>(conn)?,
                );
            }
            let mut tags = tags_of(conn, ids)?;
            let mut addresses = addresses_of(conn, ids)?;
            let mut segments = if with_segments {
                segments_of(conn, ids)?
            } else {
                HashMap::new()
            };
            let mut by_id: HashMap<i64, SummaryRow> = rows.into_iter().map(|r| (r.id, r)).collect();
            Ok(ids
                .iter()
                .filter_map(|id| by_id.remove(id))
                .map(|row| {
                    let id = row.id;
                    summary(
                        row,
                        tags.remove(&id).unwrap_or_default(),
                        addresses.remove(&id).unwrap_or_default(),
                        segments.remove(&id).unwrap_or_default(),
                    )
                })
                .collect())
        }

        /// Sets the customer's `updated_at`: a write to something it owns.
        pub fn touch_customer(
            conn: &mut Conn,
            id: i64,
            now: time::OffsetDateTime,
        ) -> StoreResult<()> {
            diesel::update(customers::table.find(id))
                .set(customers::updated_at.eq(now))
                .execute(conn)?;
            Ok(())
        }

        /// The whole customer `id`, or `NotFound`.
        pub fn customer(conn: &mut Conn, id: i64) -> StoreResult<Customer> {
            if let Some(document) = crate::backend::customer_document(conn, id) {
                return match document? {
                    Some(document) => Ok(decode::<CustomerDocument>(&document)?.into_customer()),
                    None => fail(RepoError::NotFound),
                };
            }
            let Some(row) = customers::table
                .find(id)
                .select(CustomerRow::as_select())
                .first::<CustomerRow>(conn)
                .optional()?
            else {
                return fail(RepoError::NotFound);
            };
            let ids = [id];
            let tags = tags_of(conn, &ids)?.remove(&id).unwrap_or_default();
            let addresses = addresses_of(conn, &ids)?.remove(&id).unwrap_or_default();
            let segments = segments_of(conn, &ids)?.remove(&id).unwrap_or_default();
            let mut metafields = customer_metafields::table
                .filter(customer_metafields::customer_id.eq(id))
                .order((customer_metafields::namespace, customer_metafields::key))
                .select((
                    customer_metafields::namespace,
                    customer_metafields::key,
                    customer_metafields::value,
                ))
                .load::<(String, String, String)>(conn)?
                .into_iter()
                .map(|(ns, key, value)| Metafield::from_stored(ns, key, value))
                .collect::<Vec<_>>();
            metafields.sort_by(|a, b| (a.namespace(), a.key()).cmp(&(b.namespace(), b.key())));
            let (referred, spent_of_referred): (i64, i64) = customers::table
                .filter(customers::referrer_id.eq(id))
                .select((
                    sql::<BigInt>("COUNT(*)"),
                    sql::<BigInt>("CAST(COALESCE(SUM(total_spent_cents), 0) AS BIGINT)"),
                ))
                .first(conn)?;
            Ok(assemble(
                row,
                Related {
                    tags,
                    addresses,
                    segments,
                    metafields,
                    referred,
                    spent_of_referred,
                },
            ))
        }

        /// A document the dialect built (see `crm_diesel::document`). It is
        /// the database's own rendering of rows this code reads: failing to
        /// decode one is a fault, not bad input.
        pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
            serde_json::from_str(text).map_err(|e| {
                StoreError::Repo(RepoError::Internal(format!(
                    "undecodable document from the database: {e}"
                )))
            })
        }

        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        struct SegmentDocument {
            id: i64,
            title: String,
        }

        impl SegmentDocument {
            fn into_ref(self) -> SegmentRef {
                SegmentRef {
                    id: SegmentId::new(self.id).expect("stored segment ids are positive"),
                    title: self.title,
                }
            }
        }

        /// A whole customer as one document.
        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        struct CustomerDocument {
            c: CustomerRow,
            tags: Vec<String>,
            addresses: Vec<AddressRow>,
            segments: Vec<SegmentDocument>,
            metafields: Vec<(String, String, String)>,
            referred: (i64, i64),
        }

        impl CustomerDocument {
            fn into_customer(self) -> Customer {
                let mut tags = self.tags;
                tags.sort_unstable();
                let mut metafields: Vec<Metafield> = self
                    .metafields
                    .into_iter()
                    .map(|(ns, key, value)| Metafield::from_stored(ns, key, value))
                    .collect();
                metafields.sort_by(|a, b| (a.namespace(), a.key()).cmp(&(b.namespace(), b.key())));
                assemble(
                    self.c,
                    Related {
                        tags,
                        addresses: self.addresses.into_iter().map(Address::from).collect(),
                        segments: self
                            .segments
                            .into_iter()
                            .map(SegmentDocument::into_ref)
                            .collect(),
                        metafields,
                        referred: self.referred.0,
                        spent_of_referred: self.referred.1,
                    },
                )
            }
        }

        /// One list item as one document.
        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        pub struct SummaryDocument {
            c: SummaryRow,
            tags: Vec<String>,
            addresses: Vec<AddressRow>,
            segments: Vec<SegmentDocument>,
        }

        impl SummaryDocument {
            pub fn into_summary(self) -> CustomerSummary {
                let mut tags = self.tags;
                tags.sort_unstable();
                summary(
                    self.c,
                    tags,
                    self.addresses.into_iter().map(Address::from).collect(),
                    self.segments
                        .into_iter()
                        .map(SegmentDocument::into_ref)
                        .collect(),
                )
            }
        }

        /// A list page as one document.
        #[derive(serde::Deserialize)]
        #[serde(crate = "crm_diesel::document::__private::serde")]
        pub struct PageDocument {
            pub count: i64,
            pub items: Vec<SummaryDocument>,
        }

        /// The list item from its row and related data.
        fn summary(
            row: SummaryRow,
            tags: Vec<String>,
            addresses: Vec<Address>,
            segments: Vec<SegmentRef>,
        ) -> CustomerSummary {
            CustomerSummary {
                id: customer_id(row.id),
                gender: crm_domain::customer::Gender::parse(&row.gender).unwrap_or_default(),
                mobile: row.mobile,
                full_name: row.full_name,
                email: row.email,
                birthday: row.birthday,
                note: row.note,
                accepts_marketing: row.accepts_marketing,
                tags,
                addresses,
                segments,
                created_at: row.created_at,
            }
        }

        /// What a whole customer holds besides its own row.
        pub struct Related {
            pub tags: Vec<String>,
            pub addresses: Vec<Address>,
            pub segments: Vec<SegmentRef>,
            pub metafields: Vec<Metafield>,
            /// How many customers name this one as referrer, and what they spent.
            pub referred: i64,
            pub spent_of_referred: i64,
        }

        /// The whole customer from its row and related data.
        pub fn assemble(row: CustomerRow, related: Related) -> Customer {
            Customer {
                id: customer_id(row.id),
                gender: row.gender(),
                profile: row.profile(),
                statistics: row.statistics(related.referred, related.spent_of_referred),
                referrer: row.referrer_id.map(customer_id),
                mobile: row.mobile,
                full_name: row.full_name,
                email: row.email,
                birthday: row.birthday,
                avatar: row.avatar,
                note: row.note,
                accepts_marketing: row.accepts_marketing,
                referral_code: row.referral_code,
                multipass_identifier: row.multipass_identifier,
                wechat_nickname: row.wechat_nickname,
                tags: related.tags,
                addresses: related.addresses,
                segments: related.segments,
                metafields: related.metafields,
                created_at: row.created_at,
                updated_at: row.updated_at,
            }
        }

        /// Fails with `NotFound` unless customer `id` exists; with `lock`, holds a
        /// write lock on it until the transaction ends, serialising writes to its
        /// children.
        pub fn require_customer(conn: &mut Conn, id: i64, lock: bool) -> StoreResult<()> {
            let found = if lock {
                crate::backend::lock_customer(conn, id)?
            } else {
                customers::table
                    .find(id)
                    .select(customers::id)
                    .first::<i64>(conn)
                    .optional()?
                    .is_some()
            };
            if found {
                Ok(())
            } else {
                fail(RepoError::NotFound)
            }
        }
    };
}
