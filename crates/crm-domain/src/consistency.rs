//! Read sessions: who a piece of work runs for, and whether its reads may be
//! answered from a copy of the data that lags the primary a little.
//!
//! An adapter that keeps a read replica uses this to route reads: a
//! request's reads go to the replica only inside a session that allows
//! stale reads, and a session that wrote reads from the primary until the
//! replica holds that write (read-your-writes). Work outside any session
//! (background tasks, the command line) always reads from the primary.
//! Adapters without replicas ignore sessions.
//!
//! The session is carried by the future that runs the work
//! ([`InSession`]): it is current while that future is polled, on whatever
//! thread polls it, and nowhere else.
//!
//! ```
//! use std::sync::Arc;
//! use crm_domain::consistency::{self, Session};
//!
//! let session = Session::new(Arc::from("client-1"), true);
//! let seen = block_on(consistency::in_session(session, async {
//!     consistency::current().map(|s| s.id().to_owned())
//! }));
//! assert_eq!(seen.as_deref(), Some("client-1"));
//! assert!(consistency::current().is_none(), "only while the future runs");
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The session a piece of work runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    id: Arc<str>,
    stale_reads_ok: bool,
}

impl Session {
    /// A session for `id` (for the HTTP API, the OAuth client). With
    /// `stale_reads_ok`, its reads may come from a replica that has every
    /// write this session made but may lag others' writes.
    pub fn new(id: Arc<str>, stale_reads_ok: bool) -> Self {
        Self { id, stale_reads_ok }
    }

    /// Who the session is for: the key its writes are remembered by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The same key, shared.
    pub fn shared_id(&self) -> &Arc<str> {
        &self.id
    }

    /// Whether its reads may come from a replica.
    pub fn stale_reads_ok(&self) -> bool {
        self.stale_reads_ok
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// The session of the work being polled on this thread, if any.
pub fn current() -> Option<Session> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `work` in `session`: the session is current whenever `work` is
/// polled.
pub fn in_session<F: Future>(session: Session, work: F) -> InSession<F> {
    InSession {
        session,
        work: Box::pin(work),
    }
}

/// A future that makes its session current while it is polled; see
/// [`in_session`].
#[derive(Debug)]
pub struct InSession<F> {
    session: Session,
    work: Pin<Box<F>>,
}

impl<F: Future> Future for InSession<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let previous = CURRENT.with(|current| current.replace(Some(this.session.clone())));
        // Restored even if the work panics, so the thread does not keep a
        // session that is not its own.
        struct Restore(Option<Session>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let _restore = Restore(previous);
        this.work.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_session_is_current_across_awaits_and_nests() {
        let outer = Session::new(Arc::from("a"), true);
        let inner = Session::new(Arc::from("b"), false);
        let seen = block_on(in_session(outer.clone(), async move {
            let before = current();
            tokio::task::yield_now().await;
            let after_yield = current();
            let nested = in_session(inner.clone(), async { current() }).await;
            (before, after_yield, nested, current())
        }));
        assert_eq!(seen.0.as_ref(), Some(&outer));
        assert_eq!(seen.1.as_ref(), Some(&outer));
        assert_eq!(seen.2.map(|s| s.id().to_owned()).as_deref(), Some("b"));
        assert_eq!(seen.3.as_ref(), Some(&outer), "the outer session is back");
        assert_eq!(current(), None);
    }

    #[test]
    fn another_task_does_not_see_the_session() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = rt.block_on(async {
            let other = tokio::task::LocalSet::new();
            other
                .run_until(in_session(Session::new(Arc::from("a"), true), async {
                    tokio::task::spawn_local(async { current() }).await.unwrap()
                }))
                .await
        });
        assert_eq!(seen, None);
    }
}
