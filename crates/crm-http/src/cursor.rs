//! Cursor pagination of the customer list (API.md section 10): the opaque
//! cursors, and the `next` / `previous` links.
//!
//! A cursor is base64url (no padding) of `o=<ordering>&d=<f|b>&p=<id>`,
//! with `&t=<microseconds since the epoch>` before `p` for the
//! `updated_at` orderings: the position of the customer the page starts
//! after (`d=f`) or ends before (`d=b`). Clients neither build nor parse
//! them; one that does not decode, or was issued for another ordering, is
//! `404 {"detail": "Invalid cursor"}`.

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use crm_domain::customer::{CursorPage, CursorPosition, CustomerOrdering};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::input::Query;
use crate::pagination;
use crate::ApiSettings;

/// Where a cursor points: a position and the direction to read from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub position: CursorPosition,
    pub backward: bool,
}

/// The cursor text for `cursor` in `ordering`.
pub fn encode(ordering: CustomerOrdering, cursor: Cursor) -> String {
    let direction = if cursor.backward { "b" } else { "f" };
    let position = match cursor.position {
        CursorPosition::Id(id) => format!("p={id}"),
        CursorPosition::UpdatedAt(at, id) => {
            format!("t={}&p={id}", at.unix_timestamp_nanos() / 1_000)
        }
    };
    let text = format!("o={}&d={direction}&{position}", ordering.name());
    URL_SAFE_NO_PAD.encode(text)
}

/// The cursor `raw` names for a page in `ordering`: `None` for the first
/// page (an empty value), an error for anything that does not decode or
/// belongs to another ordering.
pub fn decode(raw: &str, ordering: CustomerOrdering) -> Result<Option<Cursor>, ApiError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = || ApiError::InvalidCursor;
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut fields = std::collections::HashMap::new();
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').ok_or_else(invalid)?;
        if fields.insert(name, value).is_some() {
            return Err(invalid());
        }
    }
    if fields.get("o") != Some(&ordering.name()) {
        return Err(invalid());
    }
    let backward = match fields.get("d") {
        Some(&"f") => false,
        Some(&"b") => true,
        _ => return Err(invalid()),
    };
    let id: i64 = fields
        .get("p")
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let position = match (ordering, fields.get("t")) {
        (CustomerOrdering::IdAsc | CustomerOrdering::IdDesc, None) => CursorPosition::Id(id),
        (CustomerOrdering::UpdatedAtAsc | CustomerOrdering::UpdatedAtDesc, Some(t)) => {
            let micros: i128 = t.parse().map_err(|_| invalid())?;
            let at =
                OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| invalid())?;
            CursorPosition::UpdatedAt(at, id)
        }
        _ => return Err(invalid()),
    };
    if fields.len()
        != if matches!(position, CursorPosition::Id(_)) {
            3
        } else {
            4
        }
    {
        return Err(invalid());
    }
    Ok(Some(Cursor { position, backward }))
}

/// The `next` and `previous` links of `page`, read from `asked`.
pub fn links(
    req: &HttpRequest,
    settings: &ApiSettings,
    query: &Query,
    ordering: CustomerOrdering,
    asked: Option<Cursor>,
    page: &CursorPage,
) -> (Option<String>, Option<String>) {
    let link = |cursor: Cursor| {
        pagination::link_with(
            req,
            settings,
            query,
            "cursor",
            Some(encode(ordering, cursor)),
        )
    };
    let first = page.items.first().map(|(p, _)| *p);
    let last = page.items.last().map(|(p, _)| *p);
    let backward = asked.is_some_and(|c| c.backward);
    // Beyond the page in the direction read: only when the store says so;
    // the other way: whenever the page was reached from a position.
    let (more_forward, more_backward) = if backward {
        (asked.is_some(), page.more)
    } else {
        (page.more, asked.is_some())
    };
    let next = more_forward
        .then(|| last.or(asked.map(|c| c.position)))
        .flatten()
        .map(|position| {
            link(Cursor {
                position,
                backward: false,
            })
        });
    let previous = more_backward
        .then(|| first.or(asked.map(|c| c.position)))
        .flatten()
        .map(|position| {
            link(Cursor {
                position,
                backward: true,
            })
        });
    (next, previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cursors_round_trip_and_belong_to_their_ordering() {
        let by_id = Cursor {
            position: CursorPosition::Id(282_696),
            backward: false,
        };
        let text = encode(CustomerOrdering::IdDesc, by_id);
        assert_eq!(
            decode(&text, CustomerOrdering::IdDesc).unwrap(),
            Some(by_id)
        );
        assert!(decode(&text, CustomerOrdering::IdAsc).is_err());
        let by_time = Cursor {
            position: CursorPosition::UpdatedAt(datetime!(2026-12-03 08:15:02.123456 UTC), 7),
            backward: true,
        };
        let text = encode(CustomerOrdering::UpdatedAtAsc, by_time);
        assert_eq!(
            decode(&text, CustomerOrdering::UpdatedAtAsc).unwrap(),
            Some(by_time)
        );
        assert!(decode(&text, CustomerOrdering::UpdatedAtDesc).is_err());
        assert_eq!(decode("", CustomerOrdering::IdAsc).unwrap(), None);
        for bad in [
            "!!",
            "bm9wZQ",
            &URL_SAFE_NO_PAD.encode("o=id&d=f&p=x"),
            &URL_SAFE_NO_PAD.encode("o=id&d=f&p=1&p=2"),
            &URL_SAFE_NO_PAD.encode("o=id&d=x&p=1"),
            &URL_SAFE_NO_PAD.encode("o=id&d=f&p=1&t=5"),
        ] {
            assert!(decode(bad, CustomerOrdering::IdAsc).is_err(), "{bad}");
        }
    }
}
