//! Branch heads and the range of commits that are new between two sets of heads.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Branch heads of a repository: full ref name (`refs/heads/main`) → commit id.
///
/// Serializes as a JSON object so the caller can store the heads a monitor searched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Heads(BTreeMap<String, String>);

impl Heads {
    pub fn new() -> Heads {
        Heads::default()
    }

    pub fn insert(&mut self, reference: impl Into<String>, oid: impl Into<String>) {
        self.0.insert(reference.into(), oid.into());
    }

    pub fn get(&self, reference: &str) -> Option<&str> {
        self.0.get(reference).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `(ref, oid)` pairs in ref order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(r, o)| (r.as_str(), o.as_str()))
    }

    fn oids(&self) -> BTreeSet<&str> {
        self.0.values().map(String::as_str).collect()
    }
}

impl FromIterator<(String, String)> for Heads {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Heads {
        Heads(iter.into_iter().collect())
    }
}

/// The commits reachable from `include` and from none of `exclude`: `git log include --not exclude`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NewRange {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl NewRange {
    /// The commits that are new in `new` compared with `last`: reachable from a head of `new`
    /// and from no head of `last`. Searching it and then recording `new` as the last searched
    /// heads means the next range cannot contain any of these commits again.
    ///
    /// With empty `last` this is the whole history of `new`, so a monitor's first `last` must be
    /// the heads snapshotted when it was created.
    pub fn between(last: &Heads, new: &Heads) -> NewRange {
        let seen = last.oids();
        let include: Vec<String> = new
            .oids()
            .into_iter()
            .filter(|oid| !seen.contains(oid))
            .map(str::to_owned)
            .collect();
        if include.is_empty() {
            return NewRange::default();
        }
        NewRange {
            include,
            exclude: seen.into_iter().map(str::to_owned).collect(),
        }
    }

    /// True when the range contains no commit at all (nothing moved).
    pub fn is_empty(&self) -> bool {
        self.include.is_empty()
    }

    pub fn include(&self) -> &[String] {
        &self.include
    }

    pub fn exclude(&self) -> &[String] {
        &self.exclude
    }
}
