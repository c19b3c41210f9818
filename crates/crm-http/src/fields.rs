//! Reading the fields of a JSON object with DRF's leniency and messages: a
//! string field takes numbers too, a boolean takes "true" and 1, and every
//! problem is collected under its field name instead of stopping at the first.

use crm_domain::FieldErrors;
use serde_json::{Map, Value};
use time::Date;

pub const NOT_NULL: &str = "This field may not be null.";
pub const REQUIRED: &str = "This field is required.";
pub const INVALID_INTEGER: &str = "A valid integer is required.";
pub const INVALID_BOOLEAN: &str = "Must be a valid boolean.";
pub const INVALID_DATE: &str =
    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.";

/// The JSON type name DRF uses in "Expected a list of items but got type ...".
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Expects the body to be a JSON object.
pub fn object(body: &Value) -> Result<&Map<String, Value>, FieldErrors> {
    match body {
        Value::Object(map) => Ok(map),
        other => Err(FieldErrors::single(
            FieldErrors::NON_FIELD,
            format!(
                "Invalid data. Expected a dictionary, but got {}.",
                type_name(other)
            ),
        )),
    }
}

/// A string as DRF's CharField reads it: strings, and numbers as their text.
pub fn as_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(NOT_NULL.into()),
        _ => Err("Not a valid string.".into()),
    }
}

/// An integer from a JSON number or a string of digits.
pub fn as_integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| INVALID_INTEGER.to_owned()),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| INVALID_INTEGER.to_owned()),
        Value::Null => Err(NOT_NULL.into()),
        _ => Err(INVALID_INTEGER.into()),
    }
}

/// A boolean as DRF's BooleanField reads it.
pub fn as_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.as_str() {
            "true" | "True" | "TRUE" | "1" | "yes" | "Yes" | "on" | "On" | "t" | "T" | "y"
            | "Y" => Ok(true),
            "false" | "False" | "FALSE" | "0" | "no" | "No" | "off" | "Off" | "f" | "F" | "n"
            | "N" => Ok(false),
            _ => Err(INVALID_BOOLEAN.into()),
        },
        Value::Null => Err(NOT_NULL.into()),
        _ => Err(INVALID_BOOLEAN.into()),
    }
}

/// A `YYYY-MM-DD` date.
pub fn as_date(value: &Value) -> Result<Date, String> {
    let Value::String(s) = value else {
        return Err(INVALID_DATE.into());
    };
    // Exactly YYYY-MM-DD: the year parser alone would take a sign ("-0001").
    let s = s.trim();
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(INVALID_DATE.into());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).map_err(|_| INVALID_DATE.into())
}

/// Reads the fields of one JSON object, collecting every problem.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub errors: FieldErrors,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            errors: FieldErrors::new(),
        }
    }

    /// The raw value of `name`, if the body has it.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// Reads `name` with `read`, then checks the result with `parse`; a
    /// failure of either is recorded under `name`. `None` when absent or bad.
    pub fn get<R, T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&'a Value) -> Result<R, String>,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.map.get(name)?;
        let result = read(value).and_then(parse);
        self.errors.check(name, result)
    }

    /// Like [`Fields::get`], but JSON `null` reads as `Some(None)`.
    pub fn get_nullable<R, T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&'a Value) -> Result<R, String>,
        parse: impl FnOnce(R) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.map.get(name)? {
            Value::Null => Some(None),
            value => {
                let result = read(value).and_then(parse);
                self.errors.check(name, result).map(Some)
            }
        }
    }

    /// A text field checked by `parse`.
    pub fn text<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.get(name, as_text, |s| parse(&s))
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        self.get(name, as_bool, Ok)
    }

    /// Records a message under `name`.
    pub fn fail(&mut self, name: &str, message: impl Into<String>) {
        self.errors.add(name, message);
    }

    pub fn finish<T>(self, value: T) -> Result<T, FieldErrors> {
        self.errors.into_result().map(|()| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_accepts_numbers() {
        assert_eq!(as_text(&json!(13000000000u64)).unwrap(), "13000000000");
        assert_eq!(as_text(&json!("x")).unwrap(), "x");
        assert_eq!(as_text(&Value::Null).unwrap_err(), NOT_NULL);
        assert!(as_text(&json!(true)).is_err());
        assert!(as_text(&json!([])).is_err());
    }

    #[test]
    fn booleans_like_drf() {
        assert!(as_bool(&json!(true)).unwrap());
        assert!(as_bool(&json!("true")).unwrap());
        assert!(as_bool(&json!(1)).unwrap());
        assert!(!as_bool(&json!("0")).unwrap());
        assert_eq!(as_bool(&json!("maybe")).unwrap_err(), INVALID_BOOLEAN);
        assert!(as_bool(&json!(2)).is_err());
    }

    #[test]
    fn integers_from_numbers_and_strings() {
        assert_eq!(as_integer(&json!(5)).unwrap(), 5);
        assert_eq!(as_integer(&json!("5")).unwrap(), 5);
        assert_eq!(as_integer(&json!(5.0)).unwrap(), 5);
        assert!(as_integer(&json!(5.5)).is_err());
        assert!(as_integer(&json!("abc")).is_err());
    }

    #[test]
    fn dates_are_iso() {
        assert!(as_date(&json!("1986-05-24")).is_ok());
        assert_eq!(as_date(&json!("24/05/1986")).unwrap_err(), INVALID_DATE);
        assert!(as_date(&json!("1986-02-30")).is_err());
        assert!(as_date(&json!(19860524)).is_err());
        assert!(as_date(&json!("-0001-01-01")).is_err());
        assert!(as_date(&json!("+1986-05-24")).is_err());
    }

    #[test]
    fn fields_collect_every_error() {
        let body = json!({"a": true, "b": "x", "c": null});
        let mut fields = Fields::new(body.as_object().unwrap());
        assert_eq!(fields.text("a", |s| Ok(s.to_owned())), None);
        assert_eq!(fields.text("b", |s| Ok(s.to_owned())), Some("x".into()));
        assert_eq!(fields.get_nullable("c", as_text, Ok), Some(None));
        assert_eq!(fields.text("missing", |s| Ok(s.to_owned())), None);
        let errors = fields.finish(()).unwrap_err();
        assert!(errors.contains("a") && !errors.contains("b"));
    }
}
