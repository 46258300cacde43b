//! "Did you mean…?" for unknown event types: the known keys nearest by edit distance.

/// How many suggestions an unknown type gets.
pub const MAX_SUGGESTIONS: usize = 3;

/// Up to [`MAX_SUGGESTIONS`] of `known`, nearest to `wanted` first; ties keep `known`'s order.
pub fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut ranked: Vec<(usize, &str)> = known.map(|k| (edit_distance(wanted, k), k)).collect();
    // A stable sort keeps ties in the catalogue's (alphabetical) order, so answers are repeatable.
    ranked.sort_by_key(|(distance, _)| *distance);
    ranked
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, k)| k.to_owned())
        .collect()
}

/// Levenshtein distance over characters, with one row of memory.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("changeset:updat", "changeset:update"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn nearest_come_first_and_at_most_three() {
        let known = [
            "changeset:close",
            "changeset:update",
            "changeset:update_error",
            "herald:ping",
        ];
        let got = closest("changeset:updte", known.into_iter());
        assert_eq!(
            got,
            [
                "changeset:update",
                "changeset:close",
                "changeset:update_error"
            ]
        );
    }
}
