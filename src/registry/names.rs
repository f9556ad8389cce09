//! Registered names (`"package>name"`), the name → object table with its collision rules, and
//! "did you mean" suggestions. Objects are opaque ids here: the Python side keeps the objects.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::error::{Error, Result};

/// The separator Keras puts between package and name (spec §5.1).
pub const SEPARATOR: char = '>';

/// A registered name split into its parts: `"Course>ScaledDense"` → package `Course`, name
/// `ScaledDense`; a bare `"ScaledDense"` has no package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredName<'a> {
    /// The package before `>`, if any.
    pub package: Option<&'a str>,
    /// The name after `>` (or the whole string).
    pub name: &'a str,
}

/// Split a stored name at its first `>`. Lenient (for names read from files): any string parses.
pub fn parse_registered_name(full: &str) -> RegisteredName<'_> {
    match full.split_once(SEPARATOR) {
        Some((package, name)) => RegisteredName {
            package: Some(package),
            name,
        },
        None => RegisteredName {
            package: None,
            name: full,
        },
    }
}

/// The part after the package: `"Course>ScaledDense"` → `"ScaledDense"`.
pub fn bare_name(full: &str) -> &str {
    parse_registered_name(full).name
}

/// `"{package}>{name}"`, checked: both parts non-empty, without `>` or surrounding whitespace.
pub fn make_registered_name(package: &str, name: &str) -> Result<String> {
    for (what, part) in [("package", package), ("name", name)] {
        if part.is_empty() {
            return Err(Error::invalid(format!(
                "the {what} of a registered name is empty"
            )));
        }
        if part.contains(SEPARATOR) {
            return Err(Error::invalid(format!(
                "the {what} {part:?} contains {SEPARATOR:?}, which separates package and name"
            )));
        }
        if part.trim() != part {
            return Err(Error::invalid(format!(
                "the {what} {part:?} starts or ends with whitespace"
            )));
        }
    }
    Ok(format!("{package}{SEPARATOR}{name}"))
}

/// One registered object: an opaque id (the Python side uses `id(obj)` and keeps the object
/// alive) and where it was defined (`module.qualname`), which tells a re-executed definition
/// (a notebook cell run twice) from a different object claiming the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Opaque identity of the object.
    pub id: u64,
    /// `module.qualname` of the definition; empty when unknown.
    pub origin: String,
}

/// What [`Registry::register`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// The name was free.
    Added,
    /// The same object was registered under this name already: nothing changed.
    Unchanged,
    /// A new definition of the same `module.qualname` replaced the old one (re-run cell).
    Replaced {
        /// The id of the object that was replaced.
        previous: u64,
    },
}

/// How a name was found by [`Registry::find`] or [`find_name`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "match", content = "names")]
pub enum NameMatch {
    /// No candidate.
    None,
    /// The candidate that answers the name.
    Found(String),
    /// Several candidates answer a bare name (`X` matches `A>X` and `B>X`).
    Ambiguous(Vec<String>),
}

/// Find `wanted` among `keys` the way kerasafe accepts names: the exact key; for a packaged
/// name (`Course>X`) also a bare key `X` (users pass `custom_objects={"X": X}`); for a bare name
/// `X` also a unique packaged key `*>X` (Keras ≤ 3.6 wrote bare names for registered functions).
pub fn find_name<'a, I>(wanted: &str, keys: I) -> NameMatch
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if keys.clone().into_iter().any(|k| k == wanted) {
        return NameMatch::Found(wanted.to_string());
    }
    let parsed = parse_registered_name(wanted);
    if parsed.package.is_some() {
        if let Some(k) = keys.into_iter().find(|k| *k == parsed.name) {
            return NameMatch::Found(k.to_string());
        }
        return NameMatch::None;
    }
    let mut hits: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let p = parse_registered_name(k);
            p.package.is_some() && p.name == wanted
        })
        .map(str::to_string)
        .collect();
    hits.sort();
    hits.dedup();
    match hits.len() {
        0 => NameMatch::None,
        1 => NameMatch::Found(hits.remove(0)),
        _ => NameMatch::Ambiguous(hits),
    }
}

/// Whether a definition at `origin` (`module.qualname`) may replace an earlier run of itself:
/// one at a module's top level, executed again (a notebook cell run twice, a reloaded module).
/// A class defined inside a function (`<locals>` in its qualified name) is a new object on every
/// call, so two of them under one name collide like any other two objects.
fn is_rerunnable(origin: &str) -> bool {
    !origin.is_empty() && !origin.contains("<locals>")
}

/// The registry: registered name → object, object → name.
///
/// Rules: registering a name that is free adds it; the same object under the same name is a
/// no-op; a different object under a taken name is an error, unless both come from the same
/// top-level `module.qualname` (the definition was executed again), which replaces the entry. One object
/// may be registered under several names; its serialization name is the latest one, as in Keras.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    by_name: BTreeMap<String, Entry>,
    name_of: HashMap<u64, String>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register object `id` (defined at `origin`) under the full name `name` (`package>name`).
    pub fn register(&mut self, name: &str, id: u64, origin: &str) -> Result<Registration> {
        let parsed = parse_registered_name(name);
        let package = parsed.package.ok_or_else(|| {
            Error::invalid(format!("{name:?} is not a registered name (package>name)"))
        })?;
        make_registered_name(package, parsed.name)?;
        let outcome = match self.by_name.get(name) {
            None => Registration::Added,
            Some(e) if e.id == id => {
                self.name_of.insert(id, name.to_string());
                return Ok(Registration::Unchanged);
            }
            Some(e) if e.origin == origin && is_rerunnable(origin) => {
                Registration::Replaced { previous: e.id }
            }
            Some(e) => {
                let what = if e.origin.is_empty() {
                    "another object".to_string()
                } else {
                    e.origin.clone()
                };
                let new = if origin.is_empty() {
                    "this object"
                } else {
                    origin
                };
                return Err(Error::invalid(format!(
                    "{name:?} is already registered to {what}; cannot register {new} under the \
                     same name (choose another package= or name=)"
                )));
            }
        };
        if let Registration::Replaced { previous } = outcome {
            if self.name_of.get(&previous).map(String::as_str) == Some(name) {
                self.name_of.remove(&previous);
            }
        }
        self.by_name.insert(
            name.to_string(),
            Entry {
                id,
                origin: origin.to_string(),
            },
        );
        self.name_of.insert(id, name.to_string());
        Ok(outcome)
    }

    /// Remove a name; returns the id that was registered under it.
    pub fn unregister(&mut self, name: &str) -> Option<u64> {
        let entry = self.by_name.remove(name)?;
        if self.name_of.get(&entry.id).map(String::as_str) == Some(name) {
            // Fall back to another name of the same object, if it has one.
            match self.by_name.iter().find(|(_, e)| e.id == entry.id) {
                Some((other, _)) => {
                    self.name_of.insert(entry.id, other.clone());
                }
                None => {
                    self.name_of.remove(&entry.id);
                }
            }
        }
        Some(entry.id)
    }

    /// The entry registered under exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name)
    }

    /// Find a name with the bare-name rules of [`find_name`].
    pub fn find(&self, name: &str) -> NameMatch {
        find_name(name, self.by_name.keys().map(String::as_str))
    }

    /// The name object `id` serializes under.
    pub fn name_of(&self, id: u64) -> Option<&str> {
        self.name_of.get(&id).map(String::as_str)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Number of registered names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Edit distance over characters (optimal string alignment: insertions, deletions,
/// substitutions and transpositions of neighbours each cost 1).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Up to three candidates close to `name`, best first: small edit distances, case-insensitive,
/// on the whole name or on the bare name (at most a third of the bare name's length, at least 1,
/// at most 3); the same bare name in another package has distance 0.
pub fn suggest<'a, I>(name: &str, candidates: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lname = name.to_lowercase();
    let lbare = bare_name(name).to_lowercase();
    let limit = (lbare.chars().count() / 3).clamp(1, 3);
    // Rank by the better of the two distances, then by the whole-name distance (so the same
    // package comes first), then by name.
    let mut scored: Vec<(usize, usize, String)> = Vec::new();
    for c in candidates {
        if c == name {
            continue;
        }
        let full = edit_distance(&lname, &c.to_lowercase());
        let bare = edit_distance(&lbare, &bare_name(c).to_lowercase());
        if full.min(bare) <= limit {
            scored.push((full.min(bare), full, c.to_string()));
        }
    }
    scored.sort();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored.into_iter().take(3).map(|(_, _, c)| c).collect()
}
