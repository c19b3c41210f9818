//! Segments: named, hand-curated lists of customers.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::customer::{CustomerId, CustomerSummary};
use crate::page::{Page, PageRequest};
use crate::time_util::now_micros;
use crate::{text, Error, RepoError};

/// Positive 64-bit integer identifying a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(i64);

impl SegmentId {
    pub fn new(raw: i64) -> Option<Self> {
        (raw > 0).then_some(Self(raw))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        CustomerId::parse(raw).and_then(|id| Self::new(id.get()))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A segment's id and title: what a customer's `segments` field names, and
/// the head of a segment, whose members are read separately in pages
/// (`SegmentRepository::segment_members`) so that no reader needs to hold a
/// whole segment in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    pub id: SegmentId,
    pub title: String,
}

/// A member of a segment, as segments are read in pages: the list item of
/// the customer (with `segments` left empty) and the segment it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMember {
    pub segment: SegmentId,
    pub customer: CustomerSummary,
}

/// A segment's title: trimmed, not blank, at most 255 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentTitle(String);

impl SegmentTitle {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text::required(raw, 255).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stores segments and their memberships.
///
/// A segment is read as its head (`SegmentRef`) and then its members in
/// pages by customer id, never whole: a segment may hold any number of
/// customers, and a reader MUST be able to bound what it holds at once.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait SegmentRepository: Send + Sync + 'static {
    /// Creates an empty segment and returns its head.
    ///
    /// Every write of this trait MUST record its events (`crate::event`) in
    /// its own transaction, with `created_at` = `now`. Here:
    /// `segment.created` with the head.
    async fn create_segment(
        &self,
        title: &SegmentTitle,
        now: OffsetDateTime,
    ) -> Result<SegmentRef, RepoError>;

    /// One page of segment heads by id with the exact count of segments, both
    /// from one read; past the last page it MUST return the count with no
    /// items. Members are not read.
    async fn segment_heads(&self, page: PageRequest) -> Result<Page<SegmentRef>, RepoError>;

    /// The head of segment `id`. MUST return `NotFound` when there is no such
    /// segment.
    async fn segment_head(&self, id: SegmentId) -> Result<SegmentRef, RepoError>;

    /// At most `limit` members of the segments `segments`, as list items
    /// whose `segments` are left empty (a segment does not repeat them),
    /// ordered by segment id, then customer id, starting after the member
    /// `after` (segment, customer) in that order (from the first when
    /// `None`). `segments` may come in any order; a segment that does not
    /// exist (any more) MUST simply have no members, not fail the read.
    ///
    /// Keyset paging: calling again with `after` set to the last member
    /// returned MUST continue with the next one, so that segments read in
    /// pages give every member that stays in them exactly once, in order;
    /// fewer than `limit` members MUST mean there are no more. It MUST NOT
    /// read more than `limit` members, and its cost MUST NOT grow with how
    /// far into the segments `after` is. Each call is a short read of its
    /// own: members added or removed between calls show up (or not) per
    /// their state when their page is read.
    async fn segment_members(
        &self,
        segments: &[SegmentId],
        after: Option<(SegmentId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<SegmentMember>, RepoError>;

    /// Renames the segment and returns its new head (event
    /// `segment.updated`); `NotFound` when there is no such segment.
    async fn rename_segment(
        &self,
        id: SegmentId,
        title: &SegmentTitle,
        now: OffsetDateTime,
    ) -> Result<SegmentRef, RepoError>;

    /// Deletes the segment and its memberships; its customers stay. Event:
    /// `segment.deleted` (no membership or customer events).
    async fn delete_segment(&self, id: SegmentId, now: OffsetDateTime) -> Result<(), RepoError>;

    /// Adds the customers to the segment in one transaction; customers already
    /// in it are left as they are, and concurrent adds of overlapping lists
    /// MUST leave each customer in the segment once. When any customer does
    /// not exist nothing is added and it MUST return `Rejected` with a
    /// `customer_id` error naming the missing ids. `NotFound` when there is no
    /// such segment. Event: `segment.customers_added` naming the customers
    /// this call added (ascending), none when it added none.
    async fn add_members(
        &self,
        id: SegmentId,
        customers: &[CustomerId],
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Removes the customers from the segment; ids not in it are ignored.
    /// `NotFound` when there is no such segment. Event:
    /// `segment.customers_removed` naming the members this call removed
    /// (ascending), none when it removed none.
    async fn remove_members(
        &self,
        id: SegmentId,
        customers: &[CustomerId],
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;
}

/// The segment use cases. Writes return the segment's head; its members are
/// read with [`SegmentService::members`], a page at a time.
#[derive(Clone)]
pub struct SegmentService {
    segments: Arc<dyn SegmentRepository>,
}

impl SegmentService {
    pub fn new(segments: Arc<dyn SegmentRepository>) -> Self {
        Self { segments }
    }

    /// Creates an empty segment.
    pub async fn create(&self, title: SegmentTitle) -> Result<SegmentRef, Error> {
        Ok(self.segments.create_segment(&title, now_micros()).await?)
    }

    /// One page of segment heads; a page past the last is `InvalidPage`.
    pub async fn list(&self, page: PageRequest) -> Result<Page<SegmentRef>, Error> {
        let result = self.segments.segment_heads(page).await?;
        if !page.exists_for(result.count) {
            return Err(Error::InvalidPage);
        }
        Ok(result)
    }

    /// The segment's head; `NotFound` when there is no such segment.
    pub async fn get(&self, id: SegmentId) -> Result<SegmentRef, Error> {
        Ok(self.segments.segment_head(id).await?)
    }

    /// Up to `limit` members of `segments` after member `after`, by segment
    /// id then customer id; see [`SegmentRepository::segment_members`]. An
    /// unknown segment has none.
    pub async fn members(
        &self,
        segments: &[SegmentId],
        after: Option<(SegmentId, CustomerId)>,
        limit: usize,
    ) -> Result<Vec<SegmentMember>, Error> {
        Ok(self
            .segments
            .segment_members(segments, after, limit)
            .await?)
    }

    pub async fn rename(&self, id: SegmentId, title: SegmentTitle) -> Result<SegmentRef, Error> {
        Ok(self
            .segments
            .rename_segment(id, &title, now_micros())
            .await?)
    }

    pub async fn delete(&self, id: SegmentId) -> Result<(), Error> {
        Ok(self.segments.delete_segment(id, now_micros()).await?)
    }

    /// Adds customers (all or none) and returns the segment's head as it now
    /// is.
    pub async fn add_members(
        &self,
        id: SegmentId,
        customers: Vec<CustomerId>,
    ) -> Result<SegmentRef, Error> {
        let mut customers = customers;
        customers.sort();
        customers.dedup();
        self.segments
            .add_members(id, &customers, now_micros())
            .await?;
        self.get(id).await
    }

    /// Removes customers and returns the segment's head as it now is.
    pub async fn remove_members(
        &self,
        id: SegmentId,
        customers: Vec<CustomerId>,
    ) -> Result<SegmentRef, Error> {
        self.segments
            .remove_members(id, &customers, now_micros())
            .await?;
        self.get(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_rules() {
        assert_eq!(SegmentTitle::parse(" 标签1 ").unwrap().as_str(), "标签1");
        assert!(SegmentTitle::parse("").is_err());
        assert!(SegmentTitle::parse(&"t".repeat(255)).is_ok());
        assert!(SegmentTitle::parse(&"t".repeat(256)).is_err());
    }

    #[tokio::test]
    async fn add_members_deduplicates_before_the_store() {
        let mut repo = MockSegmentRepository::new();
        repo.expect_add_members()
            .withf(|_, ids, _| ids.iter().map(|i| i.get()).collect::<Vec<_>>() == [1, 2])
            .times(1)
            .returning(|_, _, _| Ok(()));
        repo.expect_segment_head().returning(|id| {
            Ok(SegmentRef {
                id,
                title: "t".into(),
            })
        });
        let ids = [2, 1, 2].map(|n| CustomerId::new(n).unwrap()).to_vec();
        SegmentService::new(Arc::new(repo))
            .add_members(SegmentId::new(1).unwrap(), ids)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn missing_customers_reject_the_whole_add() {
        let mut repo = MockSegmentRepository::new();
        repo.expect_add_members().returning(|_, _, _| {
            Err(RepoError::Rejected(crate::FieldErrors::single(
                "customer_id",
                "Customers 9 do not exist.",
            )))
        });
        repo.expect_segment_head().never();
        let err = SegmentService::new(Arc::new(repo))
            .add_members(
                SegmentId::new(1).unwrap(),
                vec![CustomerId::new(9).unwrap()],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(ref e) if e.contains("customer_id")));
    }

    #[tokio::test]
    async fn segment_page_past_the_end_is_invalid() {
        let mut repo = MockSegmentRepository::new();
        repo.expect_segment_heads().returning(|page| {
            Ok(Page {
                count: 0,
                items: vec![],
                request: page,
            })
        });
        let svc = SegmentService::new(Arc::new(repo));
        assert!(svc.list(PageRequest::default()).await.is_ok());
        let page2 = PageRequest::new(2, None).unwrap();
        assert!(matches!(svc.list(page2).await, Err(Error::InvalidPage)));
    }
}
