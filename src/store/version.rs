//! Version names: sequence versions `v1`, `v2`, … and semantic versions `1.2.0`.
//!
//! A version's directory name is exactly its canonical string, so every version has one name:
//! - `vN` with `N >= 1` in decimal without leading zeros (`v01` and `v0` are refused);
//! - `MAJOR.MINOR.PATCH`, three decimal numbers without leading zeros (`0` alone is fine) and
//!   without a `v` prefix (`v1.2.0` is refused with a hint) and without pre-release or build
//!   suffixes.
//!
//! Ordering: sequence versions compare numerically (`v2 < v10`), semantic versions by
//! (major, minor, patch) (`1.2.0 < 1.10.0`), and every sequence version sorts before every
//! semantic version, so `latest` of a mixed history is its highest semantic version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A parsed version name. The derived order is the documented one: variants in declaration
/// order, then numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Version {
    /// `vN`, as numbered automatically by the store.
    Seq(u64),
    /// `MAJOR.MINOR.PATCH`.
    Semver {
        /// Major.
        major: u64,
        /// Minor.
        minor: u64,
        /// Patch.
        patch: u64,
    },
}

/// A decimal number without sign or leading zeros that fits u64.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Version {
    /// Parse a version name (see the module docs for the accepted forms).
    pub fn parse(s: &str) -> Result<Version> {
        let bad = |hint: &str| {
            Error::invalid(format!(
                "invalid version {s:?}: expected \"vN\" (N >= 1, no leading zeros) or \
                 \"MAJOR.MINOR.PATCH\"{hint}"
            ))
        };
        if let Some(rest) = s.strip_prefix('v') {
            if rest.contains('.') {
                return Err(bad("; write semantic versions without the \"v\" prefix"));
            }
            return match number(rest) {
                Some(n) if n >= 1 => Ok(Version::Seq(n)),
                _ => Err(bad("")),
            };
        }
        let parts: Vec<&str> = s.split('.').collect();
        match parts.as_slice() {
            [a, b, c] => match (number(a), number(b), number(c)) {
                (Some(major), Some(minor), Some(patch)) => Ok(Version::Semver {
                    major,
                    minor,
                    patch,
                }),
                _ => Err(bad("")),
            },
            _ => Err(bad("")),
        }
    }

    /// Whether this is a `vN` sequence version.
    pub fn is_seq(&self) -> bool {
        matches!(self, Version::Seq(_))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Seq(n) => write!(f, "v{n}"),
            Version::Semver {
                major,
                minor,
                patch,
            } => write!(f, "{major}.{minor}.{patch}"),
        }
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Version> {
        Version::parse(s)
    }
}

impl TryFrom<String> for Version {
    type Error = Error;
    fn try_from(s: String) -> Result<Version> {
        Version::parse(&s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

/// The version after the highest sequence version in `existing` (`v1` when there is none);
/// semantic versions are ignored. Fails only when the highest is `v18446744073709551615`.
pub fn next_version<'a>(existing: impl IntoIterator<Item = &'a Version>) -> Result<Version> {
    let max = existing
        .into_iter()
        .filter_map(|v| match v {
            Version::Seq(n) => Some(*n),
            Version::Semver { .. } => None,
        })
        .max()
        .unwrap_or(0);
    max.checked_add(1)
        .map(Version::Seq)
        .ok_or_else(|| Error::invalid(format!("no version follows v{max}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_and_prints_canonically() {
        for s in [
            "v1",
            "v2",
            "v10",
            "v18446744073709551615",
            "1.2.0",
            "0.0.0",
            "10.0.3",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
        assert_eq!(v("v7"), Version::Seq(7));
        assert_eq!(
            v("1.10.0"),
            Version::Semver {
                major: 1,
                minor: 10,
                patch: 0
            }
        );
    }

    #[test]
    fn refuses_non_canonical_names() {
        for s in [
            "",
            "v",
            "v0",
            "v01",
            "V1",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.0",
            "1.02.0",
            "1.2.-0",
            "1.2.0-rc1",
            "1.2.0+b",
            "v1.2.0",
            "v-1",
            "v+1",
            " v1",
            "v1 ",
            "1..0",
            "latest",
            "v18446744073709551616",
            ".tmp-v1",
            "..",
            "v1/x",
        ] {
            assert!(Version::parse(s).is_err(), "{s:?} accepted");
        }
        let err = Version::parse("v1.2.0").unwrap_err().to_string();
        assert!(err.contains("without the \"v\" prefix"), "{err}");
    }

    #[test]
    fn ordering() {
        assert!(v("v2") < v("v10"));
        assert!(v("1.2.0") < v("1.10.0"));
        assert!(v("1.10.0") < v("2.0.0"));
        assert!(v("1.2.3") < v("1.2.10"));
        assert!(v("v999") < v("0.0.1"));
        let mut all = [v("1.10.0"), v("v10"), v("1.2.0"), v("v2"), v("v1")];
        all.sort();
        let names: Vec<String> = all.iter().map(|x| x.to_string()).collect();
        assert_eq!(names, ["v1", "v2", "v10", "1.2.0", "1.10.0"]);
    }

    #[test]
    fn next_version_counts_only_sequence_versions() {
        assert_eq!(next_version(&[]).unwrap(), v("v1"));
        assert_eq!(
            next_version(&[v("v2"), v("v10"), v("3.0.0")]).unwrap(),
            v("v11")
        );
        assert_eq!(next_version(&[v("5.0.0")]).unwrap(), v("v1"));
        assert!(next_version(&[Version::Seq(u64::MAX)]).is_err());
    }

    #[test]
    fn serde_as_string() {
        let json = serde_json::to_string(&v("1.2.0")).unwrap();
        assert_eq!(json, "\"1.2.0\"");
        let back: Version = serde_json::from_str("\"v3\"").unwrap();
        assert_eq!(back, Version::Seq(3));
        assert!(serde_json::from_str::<Version>("\"v03\"").is_err());
    }
}
