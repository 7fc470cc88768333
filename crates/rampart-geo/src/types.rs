//! Small value types: country codes, registries, statuses and registration dates.

use std::fmt;
use std::str::FromStr;

use crate::GeoError;

/// A two-letter country code, stored upper case: ISO 3166-1 alpha-2 (`CN`, `DE`) plus the
/// non-ISO codes the sources use (`EU`, `AP`, and `ZZ` for "no country").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// `ZZ`: AFRINIC's code for space that is not delegated to anyone.
    pub const ZZ: CountryCode = CountryCode(*b"ZZ");

    /// Parses two ASCII letters, either case (`cn` and `CN` are the same).
    pub fn parse(s: &str) -> Option<CountryCode> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    /// The code as a `&str` (always two upper-case ASCII letters).
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Whether the code names a country (or region such as `EU`) rather than "none" (`ZZ`).
    pub fn is_known(&self) -> bool {
        *self != Self::ZZ
    }

    pub(crate) fn to_u16(self) -> u16 {
        u16::from_be_bytes(self.0)
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = GeoError;
    fn from_str(s: &str) -> Result<Self, GeoError> {
        CountryCode::parse(s)
            .ok_or_else(|| GeoError::Invalid(format!("{s:?} is not a two-letter country code")))
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CountryCode::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("{s:?} is not a two-letter country code"))
        })
    }
}

/// A regional Internet registry (or IANA), as named in the delegated statistics files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Registry {
    /// AFRINIC (Africa).
    Afrinic,
    /// APNIC (Asia-Pacific).
    Apnic,
    /// ARIN (North America).
    Arin,
    /// IANA (appears in the NRO merged file).
    Iana,
    /// LACNIC (Latin America and the Caribbean).
    Lacnic,
    /// RIPE NCC (Europe, the Middle East, Central Asia).
    Ripencc,
}

impl Registry {
    /// The five RIRs, in the order `geo update` fetches them.
    pub const RIRS: [Registry; 5] = [
        Registry::Afrinic,
        Registry::Apnic,
        Registry::Arin,
        Registry::Lacnic,
        Registry::Ripencc,
    ];

    /// The name used in the files: `afrinic`, `apnic`, `arin`, `iana`, `lacnic`, `ripencc`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Registry::Afrinic => "afrinic",
            Registry::Apnic => "apnic",
            Registry::Arin => "arin",
            Registry::Iana => "iana",
            Registry::Lacnic => "lacnic",
            Registry::Ripencc => "ripencc",
        }
    }

    /// Parses a registry name as the files write it (also accepts `ripe`), any case.
    pub fn parse(s: &str) -> Option<Registry> {
        Some(match s.to_ascii_lowercase().as_str() {
            "afrinic" => Registry::Afrinic,
            "apnic" => Registry::Apnic,
            "arin" => Registry::Arin,
            "iana" => Registry::Iana,
            "lacnic" => Registry::Lacnic,
            "ripencc" | "ripe" => Registry::Ripencc,
            _ => return None,
        })
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Registry {
    type Err = GeoError;
    fn from_str(s: &str) -> Result<Self, GeoError> {
        Registry::parse(s).ok_or_else(|| {
            GeoError::Invalid(format!(
                "unknown registry {s:?} (afrinic, apnic, arin, lacnic, ripencc)"
            ))
        })
    }
}

/// The status of a block in a delegated-extended file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Delegated to a holder (an LIR/ISP) for further assignment.
    Allocated,
    /// Delegated to a holder for its own use.
    Assigned,
    /// In the registry's pool, never delegated.
    Available,
    /// Held back by the registry: neither delegated nor available.
    Reserved,
}

impl Status {
    /// The word used in the files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Allocated => "allocated",
            Status::Assigned => "assigned",
            Status::Available => "available",
            Status::Reserved => "reserved",
        }
    }

    /// Whether the block is delegated to a holder (allocated or assigned): only delegated
    /// blocks give an address a registration country.
    pub fn is_delegated(&self) -> bool {
        matches!(self, Status::Allocated | Status::Assigned)
    }

    pub(crate) fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "allocated" => Status::Allocated,
            "assigned" => Status::Assigned,
            "available" => Status::Available,
            "reserved" => Status::Reserved,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registration date from a delegated file (`YYYYMMDD`), shown as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RirDate {
    /// The year.
    pub year: u16,
    /// The month, 1-12.
    pub month: u8,
    /// The day, 1-31.
    pub day: u8,
}

impl RirDate {
    /// Parses `YYYYMMDD`. `Ok(None)` for an empty field or `00000000` (no date recorded).
    pub fn parse(s: &str) -> Result<Option<RirDate>, String> {
        if s.is_empty() || s == "00000000" {
            return Ok(None);
        }
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("date {s:?} is not YYYYMMDD"));
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<u16>().unwrap_or(0);
        let (year, month, day) = (n(0..4), n(4..6), n(6..8));
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(format!("date {s:?} has no such month or day"));
        }
        Ok(Some(RirDate {
            year,
            month: month as u8,
            day: day as u8,
        }))
    }

    pub(crate) fn pack(d: Option<RirDate>) -> u32 {
        d.map_or(0, |d| {
            u32::from(d.year) * 10_000 + u32::from(d.month) * 100 + u32::from(d.day)
        })
    }

    pub(crate) fn unpack(v: u32) -> Option<RirDate> {
        (v != 0).then_some(RirDate {
            year: (v / 10_000) as u16,
            month: (v / 100 % 100) as u8,
            day: (v % 100) as u8,
        })
    }
}

impl fmt::Display for RirDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_case_insensitive_two_letters() {
        assert_eq!(
            CountryCode::parse("cn").map(|c| c.to_string()),
            Some("CN".into())
        );
        assert_eq!(CountryCode::parse("CN"), CountryCode::parse("cn"));
        assert!(CountryCode::parse("C").is_none());
        assert!(CountryCode::parse("CHN").is_none());
        assert!(CountryCode::parse("??").is_none());
        assert!(CountryCode::parse("1A").is_none());
        assert!(!CountryCode::ZZ.is_known());
    }

    #[test]
    fn dates_parse_and_reject_nonsense() {
        let d = RirDate::parse("20090821").unwrap().unwrap();
        assert_eq!(d.to_string(), "2009-08-21");
        assert_eq!(RirDate::unpack(RirDate::pack(Some(d))), Some(d));
        assert_eq!(RirDate::parse("").unwrap(), None);
        assert_eq!(RirDate::parse("00000000").unwrap(), None);
        assert!(RirDate::parse("20091321").is_err());
        assert!(RirDate::parse("2009082").is_err());
        assert!(RirDate::parse("2009-8-2").is_err());
    }

    #[test]
    fn registry_names_round_trip() {
        for r in Registry::RIRS {
            assert_eq!(Registry::parse(r.as_str()), Some(r));
        }
        assert_eq!(Registry::parse("RIPE"), Some(Registry::Ripencc));
        assert!("nic".parse::<Registry>().is_err());
    }
}
