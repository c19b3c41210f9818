//! Rules for plain text attributes, shared by every entity: trimming, blank
//! handling and length limits, with the messages API clients already know.

/// The message for a required text that is blank.
pub const BLANK: &str = "This field may not be blank.";

/// The message for a text longer than `max` characters.
pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

/// The message for a text holding a NUL character, which PostgreSQL cannot
/// store (DRF refuses it too).
pub const NULL_CHARACTER: &str = "Null characters are not allowed.";

/// Refuses a text holding a NUL character.
pub fn no_null_characters(raw: &str) -> Result<(), String> {
    if raw.contains('\0') {
        return Err(NULL_CHARACTER.to_owned());
    }
    Ok(())
}

/// Trims `raw` and checks it holds at most `max` characters; blank is allowed.
pub fn bounded(raw: &str, max: usize) -> Result<String, String> {
    no_null_characters(raw)?;
    let trimmed = raw.trim();
    if trimmed.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(trimmed.to_owned())
}

/// Like [`bounded`], but a blank value is refused.
pub fn required(raw: &str, max: usize) -> Result<String, String> {
    let value = bounded(raw, max)?;
    if value.is_empty() {
        return Err(BLANK.to_owned());
    }
    Ok(value)
}

/// Checks length only, keeping surrounding white space (for free text such as
/// notes and metafield values, where it may matter).
pub fn bounded_untrimmed(raw: &str, max: usize) -> Result<String, String> {
    no_null_characters(raw)?;
    if raw.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_trims_and_allows_blank() {
        assert_eq!(bounded("  abc ", 3).unwrap(), "abc");
        assert_eq!(bounded("   ", 3).unwrap(), "");
    }

    #[test]
    fn bounded_counts_characters_not_bytes() {
        assert_eq!(bounded("天津市", 3).unwrap(), "天津市");
        assert!(bounded("天津市区", 3).is_err());
    }

    #[test]
    fn required_refuses_blank() {
        assert_eq!(required(" ", 5).unwrap_err(), BLANK);
        assert_eq!(required("x", 5).unwrap(), "x");
    }

    #[test]
    fn too_long_message_names_the_limit() {
        assert_eq!(
            bounded("abcd", 3).unwrap_err(),
            "Ensure this field has no more than 3 characters."
        );
    }

    #[test]
    fn null_characters_are_refused() {
        assert_eq!(bounded("a\0b", 5).unwrap_err(), NULL_CHARACTER);
        assert_eq!(required("\0", 5).unwrap_err(), NULL_CHARACTER);
        assert_eq!(bounded_untrimmed("a\0", 5).unwrap_err(), NULL_CHARACTER);
    }

    #[test]
    fn untrimmed_keeps_spaces() {
        assert_eq!(bounded_untrimmed(" a ", 3).unwrap(), " a ");
        assert!(bounded_untrimmed(" a  ", 3).is_err());
    }
}
