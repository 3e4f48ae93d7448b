//! Full-text search over every doc section: an in-memory BM25 index built with the library
//! (the same on every replica, no database), headings weighted above body text, the last
//! query word matched as a prefix so results follow typing, snippets with the matches marked.

use std::collections::HashMap;

use plexichat::response::escape_html as escape;

use crate::library::Doc;

/// BM25's usual constants.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// A word in a heading counts as this many in the text.
const HEADING_WEIGHT: u32 = 3;
/// Most bytes a query may have: words a person types, not a document. With the two limits
/// below, a search's work is bounded whatever an anonymous client sends.
pub(crate) const MAX_QUERY_BYTES: usize = 256;
/// Most distinct words a query may have.
pub(crate) const MAX_QUERY_WORDS: usize = 16;
/// Most index words the word being typed matches as a prefix (`a` alone begins thousands).
const MAX_PREFIX_WORDS: usize = 64;

/// Why `query` is not searched, naming the parameter `name` and how to fix it; `None` when
/// it may be.
pub(crate) fn refusal(name: &str, query: &str) -> Option<String> {
    let query = query.trim();
    if query.len() > MAX_QUERY_BYTES {
        return Some(format!(
            "`{name}` is {} bytes long; a search takes at most {MAX_QUERY_BYTES}: send a few words",
            query.len()
        ));
    }
    let distinct = distinct(words(query));
    if distinct.is_empty() {
        return Some(format!(
            "`{name}` has no words to search for; send e.g. `?{name}=configuration`"
        ));
    }
    if distinct.len() > MAX_QUERY_WORDS {
        return Some(format!(
            "`{name}` has {} different words; a search takes at most {MAX_QUERY_WORDS}",
            distinct.len()
        ));
    }
    None
}

/// `words` without repeats, in their first order.
fn distinct(words: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    words
        .into_iter()
        .filter(|word| seen.insert(word.clone()))
        .collect()
}

#[derive(Default)]
pub(crate) struct Index {
    /// `(doc, section)` of each indexed section.
    sections: Vec<(usize, usize)>,
    lengths: Vec<f32>,
    average_length: f32,
    /// Word → `(section, weighted count)`.
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Every word, sorted, for prefix matches.
    words: Vec<String>,
}

/// One result, best first.
#[derive(Debug)]
pub(crate) struct Hit {
    pub(crate) doc: usize,
    pub(crate) section: usize,
    pub(crate) score: f32,
}

impl Index {
    pub(crate) fn build(docs: &[Doc]) -> Index {
        let mut index = Index::default();
        for (doc_index, doc) in docs.iter().enumerate() {
            for (section_index, section) in doc.sections.iter().enumerate() {
                let id = index.sections.len() as u32;
                index.sections.push((doc_index, section_index));
                let mut counts: HashMap<String, u32> = HashMap::new();
                let mut length = 0;
                let heading = if section_index == 0 && section.heading.is_empty() {
                    // The part before the first heading is found by the doc's title.
                    doc.title.as_str()
                } else {
                    section.heading.as_str()
                };
                for word in words(heading) {
                    *counts.entry(word).or_default() += HEADING_WEIGHT;
                    length += HEADING_WEIGHT;
                }
                for word in words(&section.text) {
                    *counts.entry(word).or_default() += 1;
                    length += 1;
                }
                index.lengths.push(length as f32);
                for (word, count) in counts {
                    index.postings.entry(word).or_default().push((id, count));
                }
            }
        }
        let total: f32 = index.lengths.iter().sum();
        index.average_length = total / index.lengths.len().max(1) as f32;
        index.words = index.postings.keys().cloned().collect();
        index.words.sort();
        index
    }

    /// The best `limit` sections for `query`: its first [`MAX_QUERY_WORDS`] distinct words,
    /// the last one also as a prefix of at most [`MAX_PREFIX_WORDS`] index words.
    pub(crate) fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut terms = distinct(words(query));
        terms.truncate(MAX_QUERY_WORDS);
        let Some((last, whole)) = terms.split_last() else {
            return Vec::new();
        };
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let count = self.sections.len() as f32;
        let mut add = |word: &str, weight: f32| {
            let Some(postings) = self.postings.get(word) else {
                return;
            };
            let df = postings.len() as f32;
            let idf = ((count - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(section, tf) in postings {
                let tf = tf as f32;
                let norm = 1.0 - B + B * self.lengths[section as usize] / self.average_length;
                *scores.entry(section).or_default() +=
                    weight * idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
        };
        for word in whole {
            add(word, 1.0);
        }
        // The word being typed: itself, and the words it begins, a little lower.
        let start = self
            .words
            .partition_point(|word| word.as_str() < last.as_str());
        for word in self.words[start..]
            .iter()
            .take_while(|word| word.starts_with(last.as_str()))
            .take(MAX_PREFIX_WORDS)
        {
            add(word, if word == last { 1.0 } else { 0.7 });
        }
        let mut hits: Vec<Hit> = scores
            .into_iter()
            .map(|(section, score)| {
                let (doc, section) = self.sections[section as usize];
                Hit {
                    doc,
                    section,
                    score,
                }
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.doc.cmp(&b.doc))
                .then(a.section.cmp(&b.section))
        });
        hits.truncate(limit);
        hits
    }
}

/// Lowercase words of letters, digits and `_`; `snake_case` words are also split into
/// their parts.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
    {
        let word = word.to_lowercase();
        if word.contains('_') {
            out.extend(
                word.split('_')
                    .filter(|part| !part.is_empty())
                    .map(str::to_string),
            );
        }
        let trimmed = word.trim_matches('_');
        if !trimmed.is_empty() {
            out.push(trimmed.to_string());
        }
    }
    out
}

/// About 200 characters of `text` around the first match of a query word, HTML-escaped,
/// with every match in `<mark>`.
pub(crate) fn snippet(text: &str, query: &str) -> String {
    let terms = words(query);
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; fall back to no highlighting then.
    let comparable = lower.len() == text.len();
    let first = if comparable {
        terms
            .iter()
            .filter_map(|term| lower.find(term.as_str()))
            .min()
    } else {
        None
    };
    let start = floor_char(text, first.unwrap_or(0).saturating_sub(60));
    let end = floor_char(text, (start + 200).min(text.len()));
    let window = &text[start..end];
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = 0;
    if comparable {
        let lower_window = &lower[start..end];
        while at < window.len() {
            let next = terms
                .iter()
                .filter_map(|term| {
                    lower_window[at..]
                        .find(term.as_str())
                        .map(|found| (at + found, term.len()))
                })
                .min();
            let Some((found, len)) = next else {
                break;
            };
            let stop = floor_char(window, (found + len).min(window.len()));
            if stop <= found {
                break;
            }
            out.push_str(&escape(&window[at..found]));
            out.push_str("<mark>");
            out.push_str(&escape(&window[found..stop]));
            out.push_str("</mark>");
            at = stop;
        }
    }
    out.push_str(&escape(&window[at..]));
    if end < text.len() {
        out.push('…');
    }
    out
}

fn floor_char(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{Kind, Section};

    fn doc(title: &str, sections: &[(&str, &str)]) -> Doc {
        Doc {
            segment: "p",
            path: "x.md",
            title: title.to_string(),
            kind: Kind::Markdown(String::new()),
            bytes: b"",
            sections: sections
                .iter()
                .map(|(heading, text)| Section {
                    anchor: heading.to_lowercase(),
                    heading: heading.to_string(),
                    text: text.to_string(),
                })
                .collect(),
            links: Vec::new(),
        }
    }

    #[test]
    fn rarer_words_and_headings_rank_higher() {
        let docs = [
            doc(
                "One",
                &[
                    ("Intro", "the plugin the plugin the server"),
                    ("Refused words", "notes are screened"),
                ],
            ),
            doc("Two", &[("Other", "the refused list mentions words once")]),
        ];
        let index = Index::build(&docs);
        let hits = index.search("refused words", 10);
        assert_eq!((hits[0].doc, hits[0].section), (0, 1), "{hits:?}");
        assert_eq!(hits.len(), 2);
        assert!(index.search("nothing-here", 10).is_empty());
        assert!(index.search("  ", 10).is_empty());
        // The word being typed matches as a prefix.
        let typed = index.search("scree", 10);
        assert_eq!((typed[0].doc, typed[0].section), (0, 1));
    }

    /// What an anonymous client sends is bounded before any work: bytes, distinct words,
    /// and the prefix the last word expands to.
    #[test]
    fn a_search_does_bounded_work_whatever_the_query() {
        assert_eq!(refusal("q", "plugin config"), None);
        // Repeats are one word each.
        assert_eq!(refusal("q", &"plugin ".repeat(30)), None);
        let many: Vec<String> = (0..MAX_QUERY_WORDS + 1).map(|n| format!("w{n}")).collect();
        let refused = refusal("q", &many.join(" ")).unwrap();
        assert!(
            refused.starts_with("`q` has 17 different words"),
            "{refused}"
        );
        let long = refusal("q", &"x".repeat(MAX_QUERY_BYTES + 1)).unwrap();
        assert!(long.contains("at most 256"), "{long}");
        assert!(refusal("q", " ,; ").unwrap().contains("no words"));

        // 100 sections, each with its own word beginning `w`: the prefix `w` reaches 64.
        let sections: Vec<(String, String)> = (0..100)
            .map(|n| (format!("S{n}"), format!("w{n:03}")))
            .collect();
        let sections: Vec<(&str, &str)> = sections
            .iter()
            .map(|(heading, text)| (heading.as_str(), text.as_str()))
            .collect();
        let index = Index::build(&[doc("Many", &sections)]);
        assert_eq!(index.search("w", 1000).len(), MAX_PREFIX_WORDS);
        assert_eq!(index.search("w042", 1000).len(), 1);
    }

    #[test]
    fn words_split_snake_case_and_ignore_punctuation() {
        assert_eq!(
            words("Set `refused_words`, then: GO!"),
            ["set", "refused", "words", "refused_words", "then", "go"]
        );
    }

    #[test]
    fn snippets_are_escaped_and_marked() {
        let text = format!(
            "{} the <b>refused</b> word {}",
            "a".repeat(100),
            "z".repeat(300)
        );
        let snippet = snippet(&text, "REFUSED");
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        assert!(
            snippet.contains("&lt;b&gt;<mark>refused</mark>&lt;/b&gt;"),
            "{snippet}"
        );
        assert!(!snippet.contains("<b>"));
        assert_eq!(
            super::snippet("é is fine", "fine"),
            "é is <mark>fine</mark>"
        );
    }
}
