//! Page-number pagination: which page of a result a caller asked for, and
//! what a page holds.

/// A request for page `page` (1-based) of `size` items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    page: u64,
    size: u64,
}

impl PageRequest {
    pub const DEFAULT_SIZE: u64 = 10;
    pub const MAX_SIZE: u64 = 1000;

    /// `page` must be at least 1; `size` is clamped to `1..=MAX_SIZE`
    /// (`None` or 0 means the default size).
    pub fn new(page: u64, size: Option<u64>) -> Option<Self> {
        if page == 0 {
            return None;
        }
        let size = match size {
            None | Some(0) => Self::DEFAULT_SIZE,
            Some(s) => s.min(Self::MAX_SIZE),
        };
        Some(Self { page, size })
    }

    /// Parses the `page` and `page_size` query values as DRF does: a page that
    /// is not a positive integer is `Err(())` (an invalid page); a page size
    /// that is not a positive integer falls back to the default, and one above
    /// the maximum is clamped.
    #[allow(clippy::result_unit_err)]
    pub fn parse(page: Option<&str>, size: Option<&str>) -> Result<Self, ()> {
        let page = match page {
            None => 1,
            Some(raw) => raw.trim().parse::<u64>().map_err(|_| ())?,
        };
        let size = size.and_then(|raw| raw.trim().parse::<u64>().ok());
        Self::new(page, size).ok_or(())
    }

    pub fn page(self) -> u64 {
        self.page
    }

    pub fn size(self) -> u64 {
        self.size
    }

    /// How many items come before this page.
    pub fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.size)
    }

    /// Whether this page exists for a result of `count` items. Page 1 always
    /// exists, even for an empty result.
    pub fn exists_for(self, count: u64) -> bool {
        self.page == 1 || self.offset() < count
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            size: Self::DEFAULT_SIZE,
        }
    }
}

/// One page of a result, with the exact number of items in the whole result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub count: u64,
    pub items: Vec<T>,
    pub request: PageRequest,
}

impl<T> Page<T> {
    pub fn has_next(&self) -> bool {
        self.request.offset() + (self.items.len() as u64) < self.count
    }

    pub fn has_previous(&self) -> bool {
        self.request.page() > 1
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            count: self.count,
            items: self.items.into_iter().map(f).collect(),
            request: self.request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = PageRequest::parse(None, None).unwrap();
        assert_eq!((p.page(), p.size(), p.offset()), (1, 10, 0));
    }

    #[test]
    fn page_size_is_clamped_to_1000() {
        assert_eq!(PageRequest::parse(None, Some("5000")).unwrap().size(), 1000);
        assert_eq!(PageRequest::parse(None, Some("1000")).unwrap().size(), 1000);
    }

    #[test]
    fn bad_page_size_falls_back_to_default() {
        for raw in ["0", "-3", "abc", "", "1.5"] {
            assert_eq!(
                PageRequest::parse(None, Some(raw)).unwrap().size(),
                10,
                "{raw}"
            );
        }
    }

    #[test]
    fn page_must_be_a_positive_integer() {
        for raw in ["0", "-1", "abc", "", "1.0"] {
            assert!(PageRequest::parse(Some(raw), None).is_err(), "{raw}");
        }
        assert_eq!(
            PageRequest::parse(Some("3"), Some("20")).unwrap().offset(),
            40
        );
    }

    #[test]
    fn page_existence() {
        let first = PageRequest::new(1, Some(10)).unwrap();
        let second = PageRequest::new(2, Some(10)).unwrap();
        assert!(first.exists_for(0));
        assert!(!second.exists_for(10));
        assert!(second.exists_for(11));
    }

    #[test]
    fn next_and_previous() {
        let page = Page {
            count: 25,
            items: vec![0; 10],
            request: PageRequest::new(2, Some(10)).unwrap(),
        };
        assert!(page.has_next());
        assert!(page.has_previous());
        let last = Page {
            count: 25,
            items: vec![0; 5],
            request: PageRequest::new(3, Some(10)).unwrap(),
        };
        assert!(!last.has_next());
    }

    #[test]
    fn huge_page_numbers_do_not_overflow() {
        let p = PageRequest::new(u64::MAX, Some(1000)).unwrap();
        assert!(!p.exists_for(1_000_000));
    }
}
