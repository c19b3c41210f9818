//! Segment answers written as they are read.
//!
//! A segment may hold any number of customers, and its answer embeds every
//! one of them (`{"id", "title", "customers": [...]}`, alone or in a list
//! page). Instead of materialising the answer, the handler reads the heads
//! (id, title) once and then the members by keyset on (segment id, customer
//! id), [`MEMBER_CHUNK`] at a time, each chunk one short read, serialised to
//! bytes and sent through a channel of [`CHANNEL_DEPTH`] chunks to an actix
//! streaming body. The channel is bounded, so a slow client stops the reads
//! instead of making the server buffer the answer: one request holds at most
//! a few chunks at once, whatever the segments hold, and [`StreamLimit`]
//! bounds how many answers are in progress at once.
//!
//! The first chunk is read before the response starts, so a missing segment,
//! a bad page or an unavailable database still give their normal error
//! responses; an answer that fits in that chunk is sent whole, with a
//! `Content-Length`. An error after the first byte cannot change the status
//! any more: it is logged and the connection is aborted (the chunked body
//! never ends), which a client sees as a truncated answer.
//!
//! The bytes are those of serialising the DTOs in one go: the envelope and
//! segment heads come from `PageDto` and `SegmentDto` serialised with empty
//! lists (cut before the closing `]}`), the members from
//! `CustomerListItemDto`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use crm_domain::customer::CustomerId;
use crm_domain::segment::{SegmentId, SegmentRef, SegmentService};
use crm_domain::Error;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::dto::{CustomerListItemDto, Render, SegmentDto};

/// Members read, rendered and sent per chunk. This bounds what one request
/// holds at once (the rows, their DTOs and some 125 KB of JSON for members
/// with a tag and no address): 500 list items with their tags and addresses
/// are a handful of short queries, small enough to keep a read brief and the
/// memory per request flat, large enough that a 10,000-member segment takes
/// 20 reads, not thousands, and that one id list binds on every backend.
pub const MEMBER_CHUNK: usize = 500;

/// Chunks that may wait in the channel for a slow client (plus one being
/// read and one being written out): the producer reads ahead of the socket
/// by this much, then waits.
pub const CHANNEL_DEPTH: usize = 2;

/// `value` serialised, without the closing `]}` of its last (empty) list:
/// the opening of an object whose list is written piece by piece.
fn opening(value: &impl Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).expect("DTOs serialise");
    assert!(
        bytes.ends_with(b"[]}"),
        "the last field is an empty list: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes.truncate(bytes.len() - 2);
    bytes
}

/// The closing of what [`opening`] opened.
const CLOSING: &[u8] = b"]}";

/// Writes one answer: `prefix`, the segments `heads` (in id order) with
/// their members, `suffix`. Each [`Writer::next`] does one read.
pub struct Writer {
    segments: SegmentService,
    render: Render,
    heads: Vec<SegmentRef>,
    ids: Vec<SegmentId>,
    prefix: Option<Vec<u8>>,
    suffix: &'static [u8],
    /// Heads whose opening is written.
    opened: usize,
    /// Whether the last opened segment has a member written.
    has_member: bool,
    /// The last member read.
    after: Option<(SegmentId, CustomerId)>,
    /// Whether every member has been read.
    read_all: bool,
    finished: bool,
}

impl Writer {
    /// One segment, as the detail and membership answers give it.
    pub fn single(segments: SegmentService, render: Render, head: SegmentRef) -> Self {
        Self::new(segments, render, Vec::new(), vec![head], b"")
    }

    /// A page of segments inside `envelope` (a `PageDto` with no results).
    pub fn page(
        segments: SegmentService,
        render: Render,
        envelope: &impl Serialize,
        heads: Vec<SegmentRef>,
    ) -> Self {
        Self::new(segments, render, opening(envelope), heads, CLOSING)
    }

    fn new(
        segments: SegmentService,
        render: Render,
        prefix: Vec<u8>,
        heads: Vec<SegmentRef>,
        suffix: &'static [u8],
    ) -> Self {
        let ids = heads.iter().map(|h| h.id).collect();
        Self {
            segments,
            render,
            heads,
            ids,
            prefix: Some(prefix),
            suffix,
            opened: 0,
            has_member: false,
            after: None,
            read_all: false,
            finished: false,
        }
    }

    /// The segment whose members are being written.
    fn current(&self) -> Option<SegmentId> {
        self.opened.checked_sub(1).map(|i| self.heads[i].id)
    }

    /// Opens the next segment, closing the one before.
    fn open_next(&mut self, out: &mut Vec<u8>) {
        if self.opened > 0 {
            out.extend_from_slice(CLOSING);
            out.push(b',');
        }
        out.extend(opening(&SegmentDto::head(&self.heads[self.opened])));
        self.opened += 1;
        self.has_member = false;
    }

    /// The next piece of the answer (one read of members, or none left),
    /// `None` once everything is written.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        if self.finished {
            return Ok(None);
        }
        let mut out = self.prefix.take().unwrap_or_default();
        if !self.read_all && !self.ids.is_empty() {
            let members = self
                .segments
                .members(&self.ids, self.after, MEMBER_CHUNK)
                .await?;
            self.read_all = members.len() < MEMBER_CHUNK;
            for member in &members {
                self.after = Some((member.segment, member.customer.id));
                // Members come by segment id, as the heads do: open the
                // segments up to the member's (empty ones included).
                while self.current() != Some(member.segment) && self.opened < self.heads.len() {
                    self.open_next(&mut out);
                }
                if self.current() != Some(member.segment) {
                    continue;
                }
                if self.has_member {
                    out.push(b',');
                }
                self.has_member = true;
                let item = CustomerListItemDto::new(&member.customer, self.render, false);
                serde_json::to_writer(&mut out, &item).expect("DTOs serialise");
            }
        }
        if self.read_all || self.ids.is_empty() {
            while self.opened < self.heads.len() {
                self.open_next(&mut out);
            }
            if self.opened > 0 {
                out.extend_from_slice(CLOSING);
            }
            out.extend_from_slice(self.suffix);
            self.finished = true;
        }
        Ok(Some(Bytes::from(out)))
    }

    /// The 200 answer: the first piece is read here, so that an error before
    /// the first byte is an ordinary error response; an answer that fits in
    /// it is sent whole, a longer one is streamed (see the module docs). The
    /// answer holds a slot of `limit` until it is sent whole or its body is
    /// dropped (sent, or the connection closed); with none free within
    /// [`StreamLimit::wait`], it is a 503.
    pub async fn respond(
        mut self,
        limit: &StreamLimit,
        request_id: Option<String>,
    ) -> Result<HttpResponse, Error> {
        let permit = limit.acquire().await?;
        let mut first = self.next().await?.unwrap_or_default();
        if crate::idempotency::in_unit() {
            // A request whose answer is kept for replays: read in its own
            // task (its unit of work), whole.
            let mut whole = actix_web::web::BytesMut::from(&first[..]);
            while let Some(piece) = self.next().await? {
                if whole.len() + piece.len() > crate::idempotency::MAX_KEPT_ANSWER {
                    return Err(Error::Unavailable(
                        "the answer is too large to keep for Idempotency-Key replays; send \
                         the request without the header"
                            .to_owned(),
                    ));
                }
                whole.extend_from_slice(&piece);
            }
            first = whole.freeze();
        }
        if self.finished {
            return Ok(HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(first));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHANNEL_DEPTH);
        actix_web::rt::spawn(async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                match self.next().await {
                    Ok(Some(piece)) => {
                        // The client went away: stop reading.
                        if tx.send(Ok(piece)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        tracing::error!(
                            request_id = request_id.as_deref().unwrap_or("-"),
                            %error,
                            "segment answer failed after its first byte; aborting the connection"
                        );
                        let _ = tx.send(Err(io::Error::other(error.to_string()))).await;
                        return;
                    }
                }
            }
        });
        // The body keeps the slot: what waits in the channel is freed only
        // when actix drops the body.
        let body = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
            rx.recv().await.map(|piece| (piece, (rx, permit)))
        });
        Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .streaming(body))
    }
}

/// How many segment answers may be in progress at once, server-wide: each
/// holds up to a few chunks (about a megabyte) until its body is dropped, so
/// this bounds their memory together, also against clients that open many
/// connections and read slowly or not at all.
#[derive(Clone, Debug)]
pub struct StreamLimit {
    slots: Arc<Semaphore>,
    /// How long an answer waits for a slot before it is a 503.
    pub wait: Duration,
}

impl StreamLimit {
    /// Segment answers in progress at once. 32 answers of a few 500-member
    /// chunks each stay well under 100 MB together, and 32 is three times
    /// the default pool: more answers at once would only queue for
    /// connections.
    pub const DEFAULT_SLOTS: usize = 32;
    /// Long enough to ride out a burst of large answers (a page of 200,000
    /// members takes seconds to send, more under load), short enough that a
    /// client learns the server is saturated instead of hanging. A waiting
    /// request holds nothing but itself.
    pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            wait,
        }
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, Error> {
        let busy = || Error::Unavailable("every segment answer slot is taken".into());
        match tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or closed (never: the semaphore is not closed).
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

impl Default for StreamLimit {
    fn default() -> Self {
        Self::new(Self::DEFAULT_SLOTS, Self::DEFAULT_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;
    use crm_domain::customer::{CustomerSummary, Gender};
    use crm_domain::page::{Page, PageRequest};
    use crm_domain::segment::{SegmentMember, SegmentRepository, SegmentTitle};
    use crm_domain::RepoError;
    use time::macros::datetime;
    use time::{OffsetDateTime, UtcOffset};

    use super::*;
    use crate::dto::PageDto;

    /// Segments in memory: (head, member ids in id order); member reads
    /// fail from the `fail_at`-th on (0-based), as an outage would.
    struct Memory {
        segments: Vec<(SegmentRef, Vec<i64>)>,
        fail_at: usize,
        reads: AtomicUsize,
    }

    fn memory(segments: Vec<(SegmentRef, Vec<i64>)>) -> SegmentService {
        failing(segments, usize::MAX)
    }

    fn failing(segments: Vec<(SegmentRef, Vec<i64>)>, fail_at: usize) -> SegmentService {
        SegmentService::new(Arc::new(Memory {
            segments,
            fail_at,
            reads: AtomicUsize::new(0),
        }))
    }

    fn summary(id: i64) -> CustomerSummary {
        CustomerSummary {
            id: CustomerId::new(id).unwrap(),
            mobile: format!("138{id:08}"),
            full_name: format!("客户 \"{id}\""),
            gender: Gender::default(),
            email: String::new(),
            birthday: None,
            note: "a\nb".into(),
            accepts_marketing: id % 2 == 0,
            tags: vec!["vip".into()],
            addresses: Vec::new(),
            segments: Vec::new(),
            created_at: datetime!(2024-01-01 00:00 UTC),
        }
    }

    #[async_trait]
    impl SegmentRepository for Memory {
        async fn segment_members(
            &self,
            segments: &[SegmentId],
            after: Option<(SegmentId, CustomerId)>,
            limit: usize,
        ) -> Result<Vec<SegmentMember>, RepoError> {
            if self.reads.fetch_add(1, Ordering::SeqCst) >= self.fail_at {
                return Err(RepoError::Unavailable("the database is away".into()));
            }
            let mut all: Vec<SegmentMember> = Vec::new();
            for (head, members) in &self.segments {
                if segments.contains(&head.id) {
                    all.extend(members.iter().map(|c| SegmentMember {
                        segment: head.id,
                        customer: summary(*c),
                    }));
                }
            }
            all.sort_by_key(|m| (m.segment, m.customer.id));
            Ok(all
                .into_iter()
                .filter(|m| !matches!(after, Some(a) if (m.segment, m.customer.id) <= a))
                .take(limit)
                .collect())
        }
        async fn create_segment(
            &self,
            _: &SegmentTitle,
            _: OffsetDateTime,
        ) -> Result<SegmentRef, RepoError> {
            unimplemented!()
        }
        async fn segment_heads(&self, _: PageRequest) -> Result<Page<SegmentRef>, RepoError> {
            unimplemented!()
        }
        async fn segment_head(&self, _: SegmentId) -> Result<SegmentRef, RepoError> {
            unimplemented!()
        }
        async fn rename_segment(
            &self,
            _: SegmentId,
            _: &SegmentTitle,
            _: OffsetDateTime,
        ) -> Result<SegmentRef, RepoError> {
            unimplemented!()
        }
        async fn delete_segment(&self, _: SegmentId, _: OffsetDateTime) -> Result<(), RepoError> {
            unimplemented!()
        }
        async fn add_members(
            &self,
            _: SegmentId,
            _: &[CustomerId],
            _: OffsetDateTime,
        ) -> Result<(), RepoError> {
            unimplemented!()
        }
        async fn remove_members(
            &self,
            _: SegmentId,
            _: &[CustomerId],
            _: OffsetDateTime,
        ) -> Result<(), RepoError> {
            unimplemented!()
        }
    }

    fn head(id: i64, title: &str) -> SegmentRef {
        SegmentRef {
            id: SegmentId::new(id).unwrap(),
            title: title.into(),
        }
    }

    /// The answer as one serialisation of the DTOs gives it.
    fn whole(segments: &[(SegmentRef, Vec<i64>)], r: Render) -> Vec<SegmentDto> {
        segments
            .iter()
            .map(|(h, members)| {
                let mut dto = SegmentDto::head(h);
                dto.customers = members
                    .iter()
                    .map(|c| CustomerListItemDto::new(&summary(*c), r, false))
                    .collect();
                dto
            })
            .collect()
    }

    async fn drain(mut writer: Writer) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut pieces = 0;
        while let Some(piece) = writer.next().await.unwrap() {
            out.extend_from_slice(&piece);
            pieces += 1;
        }
        (out, pieces)
    }

    fn fixture() -> Vec<(SegmentRef, Vec<i64>)> {
        let big: Vec<i64> = (1..=2 * MEMBER_CHUNK as i64 + 7).collect();
        vec![
            (head(3, "空"), Vec::new()),
            (head(5, "big \"one\""), big),
            (
                head(8, "exactly a chunk"),
                (1..=MEMBER_CHUNK as i64).collect(),
            ),
            (head(9, "small"), vec![2, 4]),
            (head(12, "empty at the end"), Vec::new()),
        ]
    }

    #[actix_web::test]
    async fn a_page_is_byte_identical_to_the_whole_serialisation() {
        let segments = fixture();
        let r = Render {
            offset: UtcOffset::from_hms(8, 0, 0).unwrap(),
        };
        let service = memory(segments.clone());
        let envelope: PageDto<SegmentDto> = PageDto {
            count: 42,
            next: Some("http://h/api/crm/segment/?page=2".into()),
            previous: None,
            results: Vec::new(),
        };
        let heads = segments.iter().map(|(h, _)| h.clone()).collect();
        let writer = Writer::page(service, r, &envelope, heads);
        let (streamed, pieces) = drain(writer).await;
        let expected = serde_json::to_vec(&PageDto {
            results: whole(&segments, r),
            ..envelope
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(streamed).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        let members: usize = segments.iter().map(|(_, m)| m.len()).sum();
        assert_eq!(pieces, members / MEMBER_CHUNK + 1, "one read per piece");
    }

    #[actix_web::test]
    async fn a_single_segment_is_byte_identical_to_its_dto() {
        let r = Render {
            offset: UtcOffset::UTC,
        };
        for (h, members) in fixture() {
            let service = memory(vec![(h.clone(), members.clone())]);
            let (streamed, pieces) = drain(Writer::single(service, r, h.clone())).await;
            let expected = serde_json::to_vec(&whole(&[(h, members.clone())], r)[0]).unwrap();
            assert_eq!(streamed, expected);
            assert_eq!(pieces, members.len() / MEMBER_CHUNK + 1);
        }
    }

    #[actix_web::test]
    async fn an_empty_page_is_the_empty_envelope() {
        let service = memory(Vec::new());
        let envelope: PageDto<SegmentDto> = PageDto {
            count: 0,
            next: None,
            previous: None,
            results: Vec::new(),
        };
        let r = Render {
            offset: UtcOffset::UTC,
        };
        let (streamed, pieces) = drain(Writer::page(service, r, &envelope, Vec::new())).await;
        assert_eq!(
            streamed,
            br#"{"count":0,"next":null,"previous":null,"results":[]}"#
        );
        assert_eq!(pieces, 1);
    }

    #[actix_web::test]
    async fn an_error_before_the_first_byte_is_an_error_answer() {
        let (h, members) = fixture().swap_remove(1);
        let r = Render {
            offset: UtcOffset::UTC,
        };
        let writer = Writer::single(failing(vec![(h.clone(), members)], 0), r, h);
        assert!(matches!(
            writer.respond(&StreamLimit::default(), None).await,
            Err(Error::Unavailable(_))
        ));
    }

    #[actix_web::test]
    async fn an_error_after_the_first_byte_aborts_the_body() {
        let (h, members) = fixture().swap_remove(1);
        let r = Render {
            offset: UtcOffset::UTC,
        };
        let writer = Writer::single(failing(vec![(h.clone(), members)], 1), r, h);
        let response = writer
            .respond(&StreamLimit::default(), Some("req-1".into()))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = actix_web::body::to_bytes(response.into_body()).await;
        assert!(body.is_err(), "the body must not end as if complete");
    }

    #[actix_web::test]
    async fn answers_in_progress_are_limited_until_their_body_is_dropped() {
        let (h, members) = fixture().swap_remove(1);
        let service = memory(vec![(h.clone(), members)]);
        let r = Render {
            offset: UtcOffset::UTC,
        };
        let limit = StreamLimit::new(1, Duration::from_millis(20));
        let writer = || Writer::single(service.clone(), r, h.clone());
        let streaming = writer().respond(&limit, None).await.unwrap();
        assert!(matches!(
            writer().respond(&limit, None).await,
            Err(Error::Unavailable(_))
        ));
        let whole = actix_web::body::to_bytes(streaming.into_body()).await;
        assert!(whole.is_ok());
        let again = writer().respond(&limit, None).await.unwrap();
        drop(again);
        writer().respond(&limit, None).await.unwrap();
    }
}
