//! Phone numbers, one rule for users' phones and envelopes' addresses: parsed by
//! libphonenumber's grammar (the `phonenumber` crate) as E.164 or, without a country code,
//! as a North American number (seed 003's `(555) 123-4567`, `555-123-4567`,
//! `+1 555 123 4567`…), and stored in E.164 so that one number has one spelling.
//!
//! The check is the number's shape (a known country code and a length its numbering plan
//! allows), not libphonenumber's strict validity: that one refuses the 555 numbers of the
//! seeds' own examples and every number of a range assigned after the crate's metadata.

use phonenumber::{Mode, country};

use super::Error;

/// The fewest digits of a national number outside North America (some small countries'
/// numbers are this short), and the most E.164 allows in all.
const MIN_NATIONAL_DIGITS: usize = 4;
const MAX_E164_DIGITS: usize = 15;
/// A North American number: area code, exchange and line.
const NORTH_AMERICAN_DIGITS: usize = 10;

/// `value` in E.164; "" stays "" (no number).
pub fn parse(field: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let refused = || {
        Error::invalid(
            field,
            format!(
                "{value:?} is not a phone number: use E.164 (+4915112345678) or a North American number \
                 ((555) 123-4567)"
            ),
        )
    };
    // A number with its country code is parsed without a default region: with one,
    // phonenumber 0.3 reads +49 151… as +49 51… (it strips the 1 as the region's prefix).
    let region = (!value.trim_start().starts_with('+')).then_some(country::Id::US);
    let number = phonenumber::parse(region, value).map_err(|_| refused())?;
    if number.extension().is_some() {
        // The E.164 form has no room for it: refused rather than dropped.
        return Err(Error::invalid(field, "an extension cannot be stored: give the number without it"));
    }
    let e164 = number.format().mode(Mode::E164).to_string();
    let code = number.code().value();
    let national = e164.len() - 1 - code.to_string().len();
    let shaped = if code == 1 {
        national == NORTH_AMERICAN_DIGITS
    } else {
        national >= MIN_NATIONAL_DIGITS && e164.len() - 1 <= MAX_E164_DIGITS
    };
    let known_code = phonenumber::metadata::DATABASE.by_code(&code).is_some();
    if !shaped || !known_code {
        return Err(refused());
    }
    Ok(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_spellings_are_stored_in_e164() {
        for (given, stored) in [
            ("(555) 123-4567", "+15551234567"),
            ("555-123-4567", "+15551234567"),
            ("+1 555 123 4567", "+15551234567"),
            ("+1 (555) 123-4567", "+15551234567"),
            ("5551234567", "+15551234567"),
            ("555.123.4567", "+15551234567"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+4915112345678", "+4915112345678"),
            ("+49 170 1234567", "+491701234567"),
            ("+44 20 7183 8750", "+442071838750"),
            ("", ""),
        ] {
            assert_eq!(parse("phone", given).unwrap(), stored, "{given}");
        }
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for given in ["12", "+0123", "call me", "555-1234", "+1 555 123 45678", "+999 1234567", "+4915112345678901"] {
            assert!(parse("phone", given).is_err(), "{given}");
        }
        let extension = parse("phone", "+14155552671 ext 5").unwrap_err();
        assert!(matches!(extension, Error::InvalidArgument(v) if v[0].description.contains("extension")));
    }
}
