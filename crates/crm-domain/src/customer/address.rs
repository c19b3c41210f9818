//! The changes a write makes to a customer's address, and their rules.

use crate::text;
use crate::FieldErrors;

/// The changes one write makes to an address; `None` keeps a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressChanges {
    pub full_name: Option<String>,
    pub mobile: Option<String>,
    pub place_code: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub zip: Option<String>,
    pub is_default: Option<bool>,
}

impl AddressChanges {
    /// Fields an address must have, not blank.
    pub const REQUIRED: [&'static str; 5] = ["full_name", "mobile", "province", "city", "address1"];
    /// Every text field, in wire order.
    pub const TEXT_FIELDS: [&'static str; 9] = [
        "full_name",
        "mobile",
        "place_code",
        "province",
        "city",
        "district",
        "address1",
        "address2",
        "zip",
    ];
    pub const MAX_CHARS: usize = 255;

    /// Sets text field `field` from `raw`, checking it. Unknown names are ignored.
    pub fn set_text(&mut self, field: &str, raw: &str) -> Result<(), String> {
        let value = if Self::REQUIRED.contains(&field) {
            text::required(raw, Self::MAX_CHARS)?
        } else {
            text::bounded(raw, Self::MAX_CHARS)?
        };
        let slot = match field {
            "full_name" => &mut self.full_name,
            "mobile" => &mut self.mobile,
            "place_code" => &mut self.place_code,
            "province" => &mut self.province,
            "city" => &mut self.city,
            "district" => &mut self.district,
            "address1" => &mut self.address1,
            "address2" => &mut self.address2,
            "zip" => &mut self.zip,
            _ => return Ok(()),
        };
        *slot = Some(value);
        Ok(())
    }

    fn get(&self, field: &str) -> Option<&String> {
        match field {
            "full_name" => self.full_name.as_ref(),
            "mobile" => self.mobile.as_ref(),
            "province" => self.province.as_ref(),
            "city" => self.city.as_ref(),
            "address1" => self.address1.as_ref(),
            _ => None,
        }
    }

    /// For a write that must give the whole address (create, full update):
    /// a "This field is required." error for each required field left out.
    pub fn check_complete(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        for field in Self::REQUIRED {
            if self.get(field).is_none() {
                errors.add(field, "This field is required.");
            }
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_refuse_blank() {
        let mut changes = AddressChanges::default();
        assert_eq!(changes.set_text("city", "  ").unwrap_err(), text::BLANK);
        assert!(changes.set_text("address2", "").is_ok());
        assert_eq!(changes.address2.as_deref(), Some(""));
    }

    #[test]
    fn fields_are_at_most_255_characters() {
        let mut changes = AddressChanges::default();
        assert!(changes.set_text("zip", &"1".repeat(256)).is_err());
        assert!(changes.set_text("zip", &"1".repeat(255)).is_ok());
    }

    #[test]
    fn complete_address_needs_every_required_field() {
        let mut changes = AddressChanges::default();
        let errors = changes.check_complete().unwrap_err();
        assert_eq!(errors.iter().count(), 5);
        for field in AddressChanges::REQUIRED {
            changes.set_text(field, "x").unwrap();
        }
        assert!(changes.check_complete().is_ok());
    }
}
