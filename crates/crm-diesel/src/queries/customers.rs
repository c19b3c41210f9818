/// The `customers` module of a Diesel adapter, instantiated by
/// [`diesel_adapter!`](crate::diesel_adapter) in the adapter's crate.
#[doc(hidden)]
#[macro_export]
macro_rules! __crm_diesel_customers {
    () => {
// `CustomerRepository` on both backends.

use crate::backend::{Conn, Db};
use crm_domain::customer::cursor::by_update_time;
use crm_domain::customer::{
    CursorPage, CursorPosition, CursorRequest, Customer, CustomerChanges, CustomerFilter,
    CustomerId, CustomerOrdering, CustomerRepository, CustomerSummary, Email, Gender, Mobile,
    Profile,
};
use crm_domain::page::{Page, PageRequest};
use crm_domain::RepoError;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use time::{Date, OffsetDateTime};

use super::error::{fail, StoreResult};
use super::events;
use crm_domain::event::EventKind;
use super::load;
use super::rows::CustomerRow;
use super::store::Store;
use crate::schema::{
    customer_coupons, customer_metafields, customer_tags, customers, segment_memberships,
};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The columns of a new customer, every one given.
#[derive(Insertable)]
#[diesel(table_name = customers)]
struct NewCustomerRow<'a> {
    mobile: &'a str,
    full_name: &'a str,
    gender: &'a str,
    email: &'a str,
    birthday: Option<Date>,
    avatar: &'a str,
    note: &'a str,
    accepts_marketing: bool,
    referral_code: &'a str,
    referrer_id: Option<i64>,
    multipass_identifier: Option<&'a str>,
    source_name: &'a str,
    campaign_name: &'a str,
    campaign_source: &'a str,
    campaign_medium: &'a str,
    campaign_content: &'a str,
    campaign_term: &'a str,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// The columns an update writes; `None` leaves a column as it is.
#[derive(AsChangeset)]
#[diesel(table_name = customers)]
struct CustomerChangeset<'a> {
    mobile: Option<&'a str>,
    full_name: Option<&'a str>,
    gender: Option<&'a str>,
    email: Option<&'a str>,
    birthday: Option<Option<Date>>,
    avatar: Option<&'a str>,
    note: Option<&'a str>,
    accepts_marketing: Option<bool>,
    referral_code: Option<&'a str>,
    referrer_id: Option<Option<i64>>,
    multipass_identifier: Option<Option<&'a str>>,
    source_name: Option<&'a str>,
    campaign_name: Option<&'a str>,
    campaign_source: Option<&'a str>,
    campaign_medium: Option<&'a str>,
    campaign_content: Option<&'a str>,
    campaign_term: Option<&'a str>,
    updated_at: OffsetDateTime,
}

fn opt_str<T: AsRef<str>>(value: &Option<Option<T>>) -> Option<&str> {
    value
        .as_ref()
        .map(|inner| inner.as_ref().map_or("", |v| v.as_ref()))
}

fn changeset(changes: &CustomerChanges, now: OffsetDateTime) -> CustomerChangeset<'_> {
    let p = &changes.profile;
    CustomerChangeset {
        mobile: opt_str(&changes.mobile),
        full_name: changes.full_name.as_ref().map(|v| v.as_str()),
        gender: changes.gender.map(Gender::as_str),
        email: opt_str(&changes.email),
        birthday: changes.birthday.map(|b| b.map(|b| b.date())),
        avatar: changes.avatar.as_ref().map(|v| v.as_str()),
        note: changes.note.as_ref().map(|v| v.as_str()),
        accepts_marketing: changes.accepts_marketing,
        referral_code: opt_str(&changes.referral_code),
        referrer_id: changes.referrer.map(|r| r.map(CustomerId::get)),
        multipass_identifier: changes
            .multipass_identifier
            .as_ref()
            .map(|m| m.as_ref().map(|v| v.as_str())),
        source_name: p.source_name.as_deref(),
        campaign_name: p.campaign_name.as_deref(),
        campaign_source: p.campaign_source.as_deref(),
        campaign_medium: p.campaign_medium.as_deref(),
        campaign_content: p.campaign_content.as_deref(),
        campaign_term: p.campaign_term.as_deref(),
        updated_at: now,
    }
}

fn insert_customer(
    conn: &mut Conn,
    changes: &CustomerChanges,
    now: OffsetDateTime,
) -> StoreResult<CustomerRow> {
    let mut profile = Profile::default();
    changes.profile.apply_to(&mut profile);
    let set = changeset(changes, now);
    let row = NewCustomerRow {
        mobile: set.mobile.unwrap_or(""),
        full_name: set.full_name.unwrap_or(""),
        gender: set.gender.unwrap_or(Gender::default().as_str()),
        email: set.email.unwrap_or(""),
        birthday: set.birthday.flatten(),
        avatar: set.avatar.unwrap_or(""),
        note: set.note.unwrap_or(""),
        accepts_marketing: set.accepts_marketing.unwrap_or(false),
        referral_code: set.referral_code.unwrap_or(""),
        referrer_id: set.referrer_id.flatten(),
        multipass_identifier: set.multipass_identifier.flatten(),
        source_name: &profile.source_name,
        campaign_name: &profile.campaign_name,
        campaign_source: &profile.campaign_source,
        campaign_medium: &profile.campaign_medium,
        campaign_content: &profile.campaign_content,
        campaign_term: &profile.campaign_term,
        created_at: now,
        updated_at: now,
    };
    Ok(diesel::insert_into(customers::table)
        .values(&row)
        .returning(CustomerRow::as_returning())
        .get_result(conn)?)
}

/// Refuses a referrer that names no customer. The foreign key decides a race
/// with a concurrent delete; this check gives the clear answer in the usual
/// case on every backend.
fn check_referrer(conn: &mut Conn, changes: &CustomerChanges) -> StoreResult<()> {
    if let Some(Some(referrer)) = changes.referrer {
        let exists = customers::table
            .find(referrer.get())
            .select(customers::id)
            .first::<i64>(conn)
            .optional()?
            .is_some();
        if !exists {
            return fail(RepoError::Rejected(crm_domain::FieldErrors::single(
                "referrer",
                format!("Invalid pk \"{}\" - object does not exist.", referrer.get()),
            )));
        }
    }
    Ok(())
}

/// Replaces the customer's tags and metafields where `changes` gives them.
fn replace_children(conn: &mut Conn, id: i64, changes: &CustomerChanges) -> StoreResult<()> {
    if let Some(tags) = &changes.tags {
        diesel::delete(customer_tags::table.filter(customer_tags::customer_id.eq(id)))
            .execute(conn)?;
        let rows: Vec<_> = tags
            .iter()
            .map(|t| {
                (
                    customer_tags::customer_id.eq(id),
                    customer_tags::tag.eq(t.as_str()),
                )
            })
            .collect();
        if !rows.is_empty() {
            diesel::insert_into(customer_tags::table)
                .values(&rows)
                .execute(conn)?;
        }
    }
    if let Some(metafields) = &changes.metafields {
        diesel::delete(customer_metafields::table.filter(customer_metafields::customer_id.eq(id)))
            .execute(conn)?;
        let rows: Vec<_> = metafields
            .as_slice()
            .iter()
            .map(|m| {
                (
                    customer_metafields::customer_id.eq(id),
                    customer_metafields::namespace.eq(m.namespace()),
                    customer_metafields::key.eq(m.key()),
                    customer_metafields::value.eq(m.value()),
                )
            })
            .collect();
        if !rows.is_empty() {
            diesel::insert_into(customer_metafields::table)
                .values(&rows)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The customers matching `filter`, as a boxed query to count or page.
fn filtered(filter: &CustomerFilter) -> customers::BoxedQuery<'static, Db> {
    let mut query = customers::table.into_boxed();
    if let Some(id) = filter.id {
        query = query.filter(customers::id.eq(id));
    }
    if let Some(ids) = &filter.id_in {
        query = query.filter(customers::id.eq_any(ids.clone()));
    }
    if let Some(coupon) = filter.coupon {
        query = query.filter(exists(
            customer_coupons::table
                .filter(customer_coupons::customer_id.eq(customers::id))
                .filter(customer_coupons::coupon_id.eq(coupon)),
        ));
    }
    if let Some(coupon) = filter.coupon_exclude {
        query = query.filter(not(exists(
            customer_coupons::table
                .filter(customer_coupons::customer_id.eq(customers::id))
                .filter(customer_coupons::coupon_id.eq(coupon)),
        )));
    }
    if let Some(segment) = filter.segment {
        query = query.filter(exists(
            segment_memberships::table
                .filter(segment_memberships::customer_id.eq(customers::id))
                .filter(segment_memberships::segment_id.eq(segment)),
        ));
    }
    if let Some(segment) = filter.segment_exclude {
        query = query.filter(not(exists(
            segment_memberships::table
                .filter(segment_memberships::customer_id.eq(customers::id))
                .filter(segment_memberships::segment_id.eq(segment)),
        )));
    }
    if let Some(tag) = &filter.tag {
        query = query.filter(exists(
            customer_tags::table
                .filter(customer_tags::customer_id.eq(customers::id))
                .filter(customer_tags::tag.eq(tag.clone())),
        ));
    }
    if let Some(mobile) = &filter.mobile {
        query = query.filter(customers::mobile.eq(mobile.clone()));
    }
    if let Some(email) = &filter.email {
        query = query.filter(lower(customers::email).eq(email.to_lowercase()));
    }
    if let Some(text) = &filter.search {
        let text = text.to_lowercase();
        let pattern = like_pattern(&text);
        // lower() on both sides: case-insensitive on every backend. Mobiles
        // and e-mails are looked at only when the text could occur in one
        // (stored values are valid ones): a full name with a space is then
        // one trigram index scan instead of three, matching the same
        // customers.
        type Condition =
            Box<dyn BoxableExpression<customers::table, Db, SqlType = diesel::sql_types::Bool>>;
        let mut condition: Condition =
            Box::new(lower(customers::full_name).like(pattern.clone()).escape('\\'));
        if Mobile::could_contain(&text) {
            condition =
                Box::new(condition.or(lower(customers::mobile).like(pattern.clone()).escape('\\')));
        }
        if Email::could_contain(&text) {
            condition = Box::new(condition.or(lower(customers::email).like(pattern).escape('\\')));
        }
        query = query.filter(condition);
    }
    if let Some(t) = filter.created_at_gte {
        query = query.filter(customers::created_at.ge(t));
    }
    if let Some(t) = filter.created_at_lte {
        query = query.filter(customers::created_at.le(t));
    }
    if let Some(t) = filter.updated_at_gte {
        query = query.filter(customers::updated_at.ge(t));
    }
    if let Some(t) = filter.updated_at_lte {
        query = query.filter(customers::updated_at.le(t));
    }
    query
}

fn ordered(
    query: customers::BoxedQuery<'static, Db>,
    filter: &CustomerFilter,
) -> customers::BoxedQuery<'static, Db> {
    use customers::{created_at, id, updated_at};
    // A search may match one customer or half of them, and the planner
    // cannot tell (its estimate for `LIKE '%text%'` bottoms out at 0.01 % of
    // the rows per column): believing there are many, it walks an index in
    // the page's order and tests every row until it has a page, which for a
    // rare text is the whole table (seconds at a million customers). A first
    // sort key that is the same for every row but that no index provides
    // (`id * 0`) makes it fetch the matches through the trigram indexes and
    // sort them instead, which costs about what the count already paid.
    let query = if filter.search.is_some() {
        query.order((id * 0_i64).asc())
    } else {
        query
    };
    match filter.ordering {
        CustomerOrdering::IdAsc => query.then_order_by(id.asc()),
        CustomerOrdering::IdDesc => query.then_order_by(id.desc()),
        CustomerOrdering::CreatedAtAsc => query.then_order_by((created_at.asc(), id.asc())),
        CustomerOrdering::CreatedAtDesc => query.then_order_by((created_at.desc(), id.desc())),
        CustomerOrdering::UpdatedAtAsc => query.then_order_by((updated_at.asc(), id.asc())),
        CustomerOrdering::UpdatedAtDesc => query.then_order_by((updated_at.desc(), id.desc())),
    }
}

/// How the number of customers `filter` selects is taken. The two most
/// common lists, every customer and one segment's members, are counted by
/// the backend, which may keep those numbers at hand (PostgreSQL does, in
/// counters that triggers maintain) instead of visiting every row. The
/// pattern names every criterion, so a new one fails to compile here rather
/// than being ignored.
enum Counted {
    All,
    Segment(i64),
    Filtered,
}

fn counted(filter: &CustomerFilter) -> Counted {
    match filter {
        CustomerFilter {
            id: None,
            id_in: None,
            coupon: None,
            coupon_exclude: None,
            segment,
            segment_exclude: None,
            mobile: None,
            email: None,
            tag: None,
            search: None,
            created_at_gte: None,
            created_at_lte: None,
            updated_at_gte: None,
            updated_at_lte: None,
            ordering: _,
        } => match segment {
            None => Counted::All,
            // Memberships reference existing customers (foreign key), one
            // row each (primary key): their number is the customers'.
            Some(segment) => Counted::Segment(*segment),
        },
        _ => Counted::Filtered,
    }
}

fn count(conn: &mut Conn, filter: &CustomerFilter) -> StoreResult<i64> {
    Ok(match counted(filter) {
        Counted::All => crate::backend::count_all_customers(conn)?,
        Counted::Segment(segment) => crate::backend::count_segment_members(conn, segment)?,
        Counted::Filtered => filtered(filter).count().get_result(conn)?,
    })
}

/// The only criterion of `filter` when that is one segment or one coupon,
/// and the list is in id order.
#[derive(Clone, Copy)]
enum Sole {
    Segment(i64),
    Coupon(i64),
}

fn sole_membership(filter: &CustomerFilter) -> Option<Sole> {
    let ascending_or_descending = matches!(
        filter.ordering,
        CustomerOrdering::IdAsc | CustomerOrdering::IdDesc
    );
    let rest_empty = |f: &CustomerFilter| {
        *f == CustomerFilter {
            segment: f.segment,
            coupon: f.coupon,
            ordering: f.ordering,
            ..Default::default()
        }
    };
    if !ascending_or_descending || !rest_empty(filter) {
        return None;
    }
    match (filter.segment, filter.coupon) {
        (Some(segment), None) => Some(Sole::Segment(segment)),
        (None, Some(coupon)) => Some(Sole::Coupon(coupon)),
        _ => None,
    }
}

/// The query of a page's ids. A list filtered by one segment or one coupon
/// alone, in id order, is read from the membership's index
/// (`segment_id, customer_id` or `coupon_id, customer_id`), which gives that
/// order already: a membership references an existing customer (foreign
/// key), so no join is needed. Its plan is then the same whatever the
/// statistics say; as a semi-join of `customers` it was planned from the
/// table's estimated size, which right after customers are imported is far
/// from the truth (a sequential scan of `customers` per page).
enum PageIds {
    Customers(customers::BoxedQuery<'static, Db, diesel::sql_types::BigInt>),
    /// A search: each id with the number of matches (`CountOver`), since the
    /// count visits every match anyway and one scan can give both.
    Searched(
        customers::BoxedQuery<
            'static,
            Db,
            (diesel::sql_types::BigInt, diesel::sql_types::BigInt),
        >,
    ),
    Members(segment_memberships::BoxedQuery<'static, Db, diesel::sql_types::BigInt>),
    Holders(customer_coupons::BoxedQuery<'static, Db, diesel::sql_types::BigInt>),
}

impl PageIds {
    /// The ids in page order, without offset and limit (see `load` and the
    /// dialect's `page_document`); `sole` is `sole_membership(filter)`.
    fn new(filter: &CustomerFilter, sole: Option<Sole>) -> Self {
        let descending = filter.ordering == CustomerOrdering::IdDesc;
        match sole {
            Some(Sole::Segment(segment)) => {
                let query = segment_memberships::table
                    .filter(segment_memberships::segment_id.eq(segment))
                    .select(segment_memberships::customer_id)
                    .into_boxed();
                let query = if descending {
                    query.order(segment_memberships::customer_id.desc())
                } else {
                    query.order(segment_memberships::customer_id.asc())
                };
                Self::Members(query)
            }
            Some(Sole::Coupon(coupon)) => {
                let query = customer_coupons::table
                    .filter(customer_coupons::coupon_id.eq(coupon))
                    .select(customer_coupons::customer_id)
                    .into_boxed();
                let query = if descending {
                    query.order(customer_coupons::customer_id.desc())
                } else {
                    query.order(customer_coupons::customer_id.asc())
                };
                Self::Holders(query)
            }
            None if filter.search.is_some() => Self::Searched(
                ordered(filtered(filter), filter)
                    .select((customers::id, $crate::CountOver)),
            ),
            None => Self::Customers(
                ordered(filtered(filter), filter).select(customers::id),
            ),
        }
    }

    fn as_fragment(&self) -> &dyn diesel::query_builder::QueryFragment<Db> {
        match self {
            Self::Customers(query) => query,
            Self::Searched(query) => query,
            Self::Members(query) => query,
            Self::Holders(query) => query,
        }
    }

    fn load(self, conn: &mut Conn, offset: i64, limit: i64) -> StoreResult<Vec<i64>> {
        Ok(match self {
            Self::Customers(query) => query.offset(offset).limit(limit).load(conn)?,
            Self::Searched(query) => query
                .offset(offset)
                .limit(limit)
                .load::<(i64, i64)>(conn)?
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
            Self::Members(query) => query.offset(offset).limit(limit).load(conn)?,
            Self::Holders(query) => query.offset(offset).limit(limit).load(conn)?,
        })
    }
}

fn list_page(
    conn: &mut Conn,
    filter: &CustomerFilter,
    page: PageRequest,
) -> StoreResult<Page<CustomerSummary>> {
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    let limit = i64::try_from(page.size()).unwrap_or(i64::MAX);
    let sole = sole_membership(filter);
    let ids = PageIds::new(filter, sole);
    // Where the dialect reads a page with one statement: count, ids and
    // items in one snapshot, one round trip. A count query is built only
    // where the count is not kept at hand.
    let count_query: Box<dyn diesel::query_builder::QueryFragment<Db>>;
    let count_source = match counted(filter) {
        Counted::All => $crate::PageCount::All,
        Counted::Segment(segment) => $crate::PageCount::Segment(segment),
        Counted::Filtered => {
            count_query = match sole {
                // Holders reference existing customers, one row each
                // (primary key): counted from the coupon's index alone.
                Some(Sole::Coupon(coupon)) => Box::new(
                    customer_coupons::table
                        .filter(customer_coupons::coupon_id.eq(coupon))
                        .count(),
                ),
                _ => Box::new(filtered(filter).count()),
            };
            if matches!(ids, PageIds::Searched(_)) {
                $crate::PageCount::WithPage(&*count_query)
            } else {
                $crate::PageCount::Query(&*count_query)
            }
        }
    };
    if let Some(document) =
        crate::backend::page_document(conn, ids.as_fragment(), offset, limit, count_source)
    {
        let document: load::PageDocument = load::decode(&document?)?;
        return Ok(Page {
            count: u64::try_from(document.count).unwrap_or(0),
            items: document
                .items
                .into_iter()
                .map(load::SummaryDocument::into_summary)
                .collect(),
            request: page,
        });
    }
    let count = count(conn, filter)?;
    let count = u64::try_from(count).unwrap_or(0);
    if page.offset() >= count {
        return Ok(Page {
            count,
            items: Vec::new(),
            request: page,
        });
    }
    let ids = ids.load(conn, offset, limit)?;
    let items = load::summaries(conn, &ids, true)?;
    Ok(Page {
        count,
        items,
        request: page,
    })
}

/// The ids and `updated_at` of one cursor page, plus one more when there
/// is one: a keyset seek on the ordering's index, `(updated_at, id)` or the
/// primary key, never an offset.
fn cursor_rows(
    conn: &mut Conn,
    filter: &CustomerFilter,
    request: &CursorRequest,
) -> StoreResult<Vec<(i64, OffsetDateTime)>> {
    use customers::{id, updated_at};
    let asc = request.ascending(filter.ordering);
    let by_time = by_update_time(filter.ordering);
    let mut query = filtered(filter);
    if let Some(before) = request.settled_before {
        query = query.filter(updated_at.le(before));
    }
    match request.position {
        Some(CursorPosition::Id(position)) => {
            query = if asc {
                query.filter(id.gt(position))
            } else {
                query.filter(id.lt(position))
            };
        }
        Some(CursorPosition::UpdatedAt(at, position)) => {
            // A row comparison, which both backends answer from the
            // (updated_at, id) index.
            let op = if asc { ">" } else { "<" };
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                    "(customers.updated_at, customers.id) {op} ("
                ))
                .bind::<crate::backend::Instant, _>(at)
                .sql(", ")
                .bind::<diesel::sql_types::BigInt, _>(position)
                .sql(")"),
            );
        }
        None => {}
    }
    let query = match (by_time, asc) {
        (false, true) => query.order(id.asc()),
        (false, false) => query.order(id.desc()),
        (true, true) => query.order((updated_at.asc(), id.asc())),
        (true, false) => query.order((updated_at.desc(), id.desc())),
    };
    let limit = i64::try_from(request.size.saturating_add(1)).unwrap_or(i64::MAX);
    Ok(query.select((id, updated_at)).limit(limit).load(conn)?)
}

fn cursor_page(
    conn: &mut Conn,
    filter: &CustomerFilter,
    request: &CursorRequest,
    settle: bool,
) -> StoreResult<CursorPage> {
    if settle {
        crate::backend::settle_customer_writes(conn)?;
    }
    let mut rows = cursor_rows(conn, filter, request)?;
    let size = usize::try_from(request.size).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    if request.backward {
        rows.reverse();
    }
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let summaries = load::summaries(conn, &ids, true)?;
    let items = rows
        .into_iter()
        .zip(summaries)
        .map(|((id, at), summary)| {
            debug_assert_eq!(summary.id.get(), id);
            (
                CursorPosition::of(filter.ordering, summary.id, at),
                summary,
            )
        })
        .collect();
    Ok(CursorPage { items, more })
}

#[async_trait::async_trait]
impl CustomerRepository for Store {
    async fn create(
        &self,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError> {
        let changes = changes.clone();
        self.write(move |conn| {
            check_referrer(conn, &changes)?;
            let row = insert_customer(conn, &changes, now)?;
            replace_children(conn, row.id, &changes)?;
            // Answered from what was written: a new customer has no
            // addresses, segments or referred customers yet.
            let tags = changes.tags.as_ref().map_or_else(Vec::new, |set| {
                set.iter().map(|t| t.as_str().to_owned()).collect()
            });
            let metafields = changes
                .metafields
                .as_ref()
                .map_or_else(Vec::new, |m| m.as_slice().to_vec());
            let customer = load::assemble(
                row,
                load::Related {
                    tags,
                    addresses: Vec::new(),
                    segments: Vec::new(),
                    metafields,
                    referred: 0,
                    spent_of_referred: 0,
                },
            );
            events::customer(conn, EventKind::CustomerCreated, now, &customer)?;
            Ok(customer)
        })
        .await
    }

    async fn get(&self, id: CustomerId) -> Result<Customer, RepoError> {
        self.read_document(move |conn| load::customer(conn, id.get()))
            .await
    }

    async fn update(
        &self,
        id: CustomerId,
        changes: &CustomerChanges,
        now: OffsetDateTime,
    ) -> Result<Customer, RepoError> {
        let changes = changes.clone();
        self.write(move |conn| {
            let id = id.get();
            check_referrer(conn, &changes)?;
            let updated = diesel::update(customers::table.find(id))
                .set(changeset(&changes, now))
                .execute(conn)?;
            if updated == 0 {
                return fail(RepoError::NotFound);
            }
            replace_children(conn, id, &changes)?;
            let customer = load::customer(conn, id)?;
            events::customer(conn, EventKind::CustomerUpdated, now, &customer)?;
            Ok(customer)
        })
        .await
    }

    async fn delete(&self, id: CustomerId, now: OffsetDateTime) -> Result<(), RepoError> {
        // Children go by ON DELETE CASCADE. The customers it referred are
        // released here (ON DELETE SET NULL would do it too, but without
        // their `updated_at` and events); the lock on the customer keeps a
        // new referral from slipping in between.
        self.write(move |conn| {
            let id = id.get();
            if !crate::backend::lock_customer(conn, id)? {
                return fail(RepoError::NotFound);
            }
            let mut referred: Vec<i64> = diesel::update(
                customers::table.filter(customers::referrer_id.eq(id)),
            )
            .set((
                customers::referrer_id.eq(None::<i64>),
                customers::updated_at.eq(now),
            ))
            .returning(customers::id)
            .get_results(conn)?;
            referred.sort_unstable();
            let deleted = diesel::delete(customers::table.find(id)).execute(conn)?;
            if deleted == 0 {
                return fail(RepoError::NotFound);
            }
            events::customer_deleted(conn, now, id)?;
            for customer in referred {
                events::customer_updated(conn, now, customer)?;
            }
            Ok(())
        })
        .await
    }

    async fn list(
        &self,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Page<CustomerSummary>, RepoError> {
        let filter = filter.clone();
        self.read_document(move |conn| list_page(conn, &filter, page))
            .await
    }

    async fn cursor_page(
        &self,
        filter: &CustomerFilter,
        request: &CursorRequest,
    ) -> Result<CursorPage, RepoError> {
        let (filter, request) = (filter.clone(), request.clone());
        // A forward walk in `id` or `updated_at` order must not pass a
        // position a write in progress could still commit behind: its page
        // is read once the writes in progress have ended (a write
        // transaction, so that the dialect may lock).
        let settle = request.must_settle(filter.ordering);
        if settle {
            self.write(move |conn| cursor_page(conn, &filter, &request, true))
                .await
        } else {
            self.read(move |conn| cursor_page(conn, &filter, &request, false))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
    };
}
