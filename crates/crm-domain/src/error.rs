//! Errors shared by every part of the domain: field-level validation errors and
//! the failures a storage port reports.

use std::collections::BTreeMap;
use std::fmt;

/// Validation problems keyed by field name, each with one or more messages.
///
/// Cross-field problems are filed under [`FieldErrors::NON_FIELD`]. The keys are
/// the domain's attribute names, which the wire format shares.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    errors: BTreeMap<String, Vec<String>>,
}

impl FieldErrors {
    /// The key for problems that belong to no single field.
    pub const NON_FIELD: &'static str = "non_field_errors";

    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding one message for one field.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .entry(field.into())
            .or_default()
            .push(message.into());
    }

    /// Records the error of `result` under `field` and returns its value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    /// Moves every message of `other` in, prefixed by nothing.
    pub fn merge(&mut self, other: FieldErrors) {
        for (field, messages) in other.errors {
            self.errors.entry(field).or_default().extend(messages);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn contains(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    /// Fields in name order, each with its messages.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.errors.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Debug for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.errors.iter()).finish()
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (field, messages) in &self.errors {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field}: {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// What a storage port reports when it cannot do what was asked. The variants
/// say how the caller must react, not where the failure came from.
#[derive(thiserror::Error)]
pub enum RepoError {
    /// The addressed record does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write; `field` names the clashing attribute.
    #[error("duplicate value for {field}")]
    Duplicate { field: &'static str },
    /// A rule enforced by the store refused the write (a referenced record is
    /// missing, a check failed); the caller should report it as bad input.
    #[error("rejected: {0}")]
    Rejected(FieldErrors),
    /// The store cannot be reached or is overloaded; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected state. Opaque to clients.
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl fmt::Debug for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Display carries the whole context the adapter attached.
        write!(f, "{self}")
    }
}

/// What a service reports to its caller. Each variant says how the caller must
/// react; the HTTP layer maps each to one status code.
#[derive(thiserror::Error)]
pub enum Error {
    /// The addressed resource does not exist (or is not under its parent).
    #[error("not found")]
    NotFound,
    /// The requested page lies past the last page of the result.
    #[error("invalid page")]
    InvalidPage,
    /// The input breaks a rule; the caller must change it before retrying.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// The store cannot serve the request now; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An unexpected failure; the details are for the logs, not for clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Error {
    /// A one-field validation error.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::single(field, message))
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

impl From<RepoError> for Error {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound => Self::NotFound,
            RepoError::Duplicate { field } => Self::Invalid(FieldErrors::single(
                field,
                format!(
                    "customer with this {} already exists.",
                    field.replace('_', " ")
                ),
            )),
            RepoError::Rejected(errors) => Self::Invalid(errors),
            RepoError::Unavailable(context) => Self::Unavailable(context),
            RepoError::Internal(context) => Self::Internal(context),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_becomes_a_field_error_in_drf_wording() {
        let Error::Invalid(errors) = Error::from(RepoError::Duplicate {
            field: "referral_code",
        }) else {
            panic!("expected Invalid");
        };
        let messages: Vec<_> = errors.iter().collect();
        assert_eq!(
            messages,
            [(
                "referral_code",
                &["customer with this referral code already exists.".to_string()][..]
            )]
        );
    }

    #[test]
    fn field_errors_collect_per_field() {
        let mut errors = FieldErrors::new();
        assert!(errors.check::<()>("a", Err("one".into())).is_none());
        errors.add("a", "two");
        assert_eq!(errors.check("b", Ok(5)), Some(5));
        assert!(errors.contains("a") && !errors.contains("b"));
        assert_eq!(errors.to_string(), "a: one; a: two");
        assert!(errors.into_result().is_err());
        assert!(FieldErrors::new().into_result().is_ok());
    }
}
