//! Suggestions for misspelt names: the closest of the valid ones, by edit distance.

/// The candidate closest to `word`, if one is close enough to be what was meant: the same
/// word in another case, or one at most an edit per three characters away (an edit inserts,
/// deletes or replaces a character, or swaps two neighbours). Ties go to the first.
pub(super) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = word.chars().count().max(3) / 3;
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = if candidate.eq_ignore_ascii_case(word) {
                0
            } else {
                edit_distance(word, candidate)
            };
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbouring characters, each counting one (`bnid` is one edit from `bind`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: the one before the previous (for swaps), the previous, and the
    // one being filled.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(word, candidates, suggestion)`.
    #[test]
    fn closest_as_a_table() {
        let check = |word: &str, candidates: &[&str], expect: Option<&str>| {
            let found = closest(word, candidates.iter().copied());
            assert_eq!(found, expect, "{word} among {candidates:?}");
        };
        check("bnid", &["admin_token", "bind"], Some("bind"));
        check("intervall", &["enabled", "interval"], Some("interval"));
        check("BIND", &["bind", "body_limit"], Some("bind"));
        check(
            "max_temperature",
            &["max_temperature_c", "min_temperature_c"],
            Some("max_temperature_c"),
        );
        check("ports", &["port", "ports_open"], Some("port"));
        check("bat", &["bad", "bag"], Some("bad"));
        check("colour", &["bind", "body_limit", "data"], None);
        check("ab", &["cd"], None);
        check("anything", &[], None);
    }

    /// `(a, b, distance)`: insertions, deletions, substitutions and swaps of neighbours.
    #[test]
    fn edit_distance_as_a_table() {
        let check = |a: &str, b: &str, expect: usize| {
            assert_eq!(edit_distance(a, b), expect, "{a} → {b}");
            assert_eq!(edit_distance(b, a), expect, "{b} → {a}");
        };
        check("", "", 0);
        check("bind", "bind", 0);
        check("", "bind", 4);
        check("bnid", "bind", 1);
        check("intervall", "interval", 1);
        check("kitten", "sitting", 3);
        check("größe", "grösse", 2);
    }
}
