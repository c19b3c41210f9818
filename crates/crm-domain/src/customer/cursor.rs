//! Cursor pagination of the customer list: keyset pages for bulk sync
//! (API.md section 10). A page starts after a position, in the list's
//! ordering (`id`, `-id`, `updated_at` or `-updated_at`, ties by id in the
//! same direction), or before it when paging back; its cost does not
//! depend on how deep the position is.

use time::OffsetDateTime;

use super::model::{CustomerOrdering, CustomerSummary};
use super::values::CustomerId;

/// Where a page starts: the sort key of the customer before it (after it,
/// paging back). Positions outlive their customers: a deleted customer's
/// position still orders the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorPosition {
    /// For the `id` orderings.
    Id(i64),
    /// For the `updated_at` orderings: the instant, then the id.
    UpdatedAt(OffsetDateTime, i64),
}

/// Whether `ordering` sorts by `updated_at` (then id), not by id alone.
pub fn by_update_time(ordering: CustomerOrdering) -> bool {
    matches!(
        ordering,
        CustomerOrdering::UpdatedAtAsc | CustomerOrdering::UpdatedAtDesc
    )
}

impl CursorPosition {
    /// The position of a customer in `ordering`.
    pub fn of(ordering: CustomerOrdering, id: CustomerId, updated_at: OffsetDateTime) -> Self {
        if by_update_time(ordering) {
            Self::UpdatedAt(updated_at, id.get())
        } else {
            Self::Id(id.get())
        }
    }

    /// Whether the position can belong to `ordering`.
    pub fn fits(&self, ordering: CustomerOrdering) -> bool {
        match self {
            Self::Id(_) => matches!(ordering, CustomerOrdering::IdAsc | CustomerOrdering::IdDesc),
            Self::UpdatedAt(..) => by_update_time(ordering),
        }
    }
}

/// The orderings a cursor walks; others (`created_at`) are refused.
pub const CURSOR_ORDERINGS: [&str; 4] = ["id", "-id", "updated_at", "-updated_at"];

/// Whether `ordering` can be walked by cursor.
pub fn cursor_ordering(ordering: CustomerOrdering) -> Result<CustomerOrdering, String> {
    match ordering {
        CustomerOrdering::IdAsc
        | CustomerOrdering::IdDesc
        | CustomerOrdering::UpdatedAtAsc
        | CustomerOrdering::UpdatedAtDesc => Ok(ordering),
        CustomerOrdering::CreatedAtAsc | CustomerOrdering::CreatedAtDesc => Err(format!(
            "Cursor pages are ordered by one of: {}.",
            CURSOR_ORDERINGS.join(", ")
        )),
    }
}

/// One cursor page to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorRequest {
    /// The customers after this position (before it when `backward`);
    /// from the start when `None`.
    pub position: Option<CursorPosition>,
    /// Paging back: the page that ends just before `position`.
    pub backward: bool,
    /// At most this many customers.
    pub size: u64,
    /// For a forward page in `updated_at` order: only customers updated at
    /// or before this instant. A write whose `updated_at` is older than the
    /// instant it commits at could otherwise land behind a position a walk
    /// already passed; the service sets it a safe margin in the past.
    pub settled_before: Option<OffsetDateTime>,
}

impl CursorRequest {
    /// Whether the page is read in ascending key order: the ordering's
    /// direction, the other way when paging back.
    pub fn ascending(&self, ordering: CustomerOrdering) -> bool {
        let natural = matches!(
            ordering,
            CustomerOrdering::IdAsc | CustomerOrdering::UpdatedAtAsc
        );
        natural != self.backward
    }

    /// Whether the page is a step of a walk that must not pass a write in
    /// progress: forward, in `id` or `updated_at` order.
    pub fn must_settle(&self, ordering: CustomerOrdering) -> bool {
        !self.backward
            && matches!(
                ordering,
                CustomerOrdering::IdAsc | CustomerOrdering::UpdatedAtAsc
            )
    }
}

/// A cursor page: the customers with their positions, in the list's
/// ordering, and whether there are more beyond it in the direction read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorPage {
    pub items: Vec<(CursorPosition, CustomerSummary)>,
    /// More customers lie beyond the page in the direction it was read.
    pub more: bool,
}
