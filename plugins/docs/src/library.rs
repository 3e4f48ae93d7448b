//! The documentation library: every plugin's embedded docs rendered once (Markdown to HTML
//! with heading anchors, tables and escaped raw HTML), split into sections for search, and
//! checked for relative links that lead nowhere.

use std::collections::HashMap;

use plexichat::plugin::{EmbeddedFile, PluginDescriptor};

use crate::search::Index;

/// The URL segment and title of the repository's own docs (the docs plugin's folder).
pub(crate) const CORE_GROUP: (&str, &str) = ("plexichat", "PlexiChat");

/// A group's URL segment, title and files.
pub(crate) type Source = (&'static str, String, &'static [EmbeddedFile]);

/// Everything `/docs` serves.
pub(crate) struct Library {
    pub(crate) groups: Vec<Group>,
    pub(crate) docs: Vec<Doc>,
    by_url: HashMap<String, usize>,
    pub(crate) index: Index,
}

/// One plugin's docs, `README.md` first.
pub(crate) struct Group {
    /// The URL segment: the plugin's name, or `plexichat` for the repository's docs.
    pub(crate) segment: &'static str,
    pub(crate) title: String,
    pub(crate) docs: Vec<usize>,
}

pub(crate) struct Doc {
    pub(crate) segment: &'static str,
    pub(crate) path: &'static str,
    pub(crate) title: String,
    pub(crate) kind: Kind,
    pub(crate) bytes: &'static [u8],
    /// Headed parts, the first one possibly without a heading.
    pub(crate) sections: Vec<Section>,
    /// Every `href` of the rendered page.
    pub(crate) links: Vec<String>,
}

pub(crate) enum Kind {
    /// Markdown, rendered to this HTML.
    Markdown(String),
    /// An HTML document: shown in a sandboxed frame.
    Html,
    /// Anything else (images, text): served as it is.
    File,
}

pub(crate) struct Section {
    /// The heading's `id`, empty for the part before the first heading.
    pub(crate) anchor: String,
    pub(crate) heading: String,
    pub(crate) text: String,
}

impl Doc {
    pub(crate) fn url(&self) -> String {
        format!("/docs/{}/{}", self.segment, self.path)
    }

    pub(crate) fn is_page(&self) -> bool {
        !matches!(self.kind, Kind::File)
    }
}

impl Library {
    /// Renders the docs of `plugins`; `own` is the docs plugin itself, whose docs are the
    /// repository's.
    pub(crate) fn of(plugins: &[&'static PluginDescriptor], own: &str) -> Library {
        let mut sources: Vec<Source> = Vec::new();
        for plugin in plugins.iter().filter(|plugin| !plugin.docs.is_empty()) {
            if plugin.name == own {
                sources.insert(0, (CORE_GROUP.0, CORE_GROUP.1.to_string(), plugin.docs));
            } else if plugin.name != CORE_GROUP.0 {
                sources.push((plugin.name, plugin.name.to_string(), plugin.docs));
            }
        }
        Library::build(sources)
    }

    /// Renders groups of files, in this order.
    pub(crate) fn build(sources: Vec<Source>) -> Library {
        let mut library = Library {
            groups: Vec::new(),
            docs: Vec::new(),
            by_url: HashMap::new(),
            index: Index::default(),
        };
        for (segment, title, files) in sources {
            let mut group = Group {
                segment,
                title,
                docs: Vec::new(),
            };
            for file in files {
                let doc = render(segment, file);
                library.by_url.insert(doc.url(), library.docs.len());
                group.docs.push(library.docs.len());
                library.docs.push(doc);
            }
            // README first, then pages by title, then other files by path.
            let docs = &library.docs;
            group.docs.sort_by_key(|&index| {
                let doc = &docs[index];
                (
                    !doc.path.eq_ignore_ascii_case("README.md"),
                    !doc.is_page(),
                    doc.title.to_lowercase(),
                )
            });
            library.groups.push(group);
        }
        library.index = Index::build(&library.docs);
        library
    }

    pub(crate) fn doc(&self, segment: &str, path: &str) -> Option<&Doc> {
        self.by_url
            .get(&format!("/docs/{segment}/{path}"))
            .map(|&index| &self.docs[index])
    }

    pub(crate) fn group(&self, segment: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.segment == segment)
    }

    /// Every relative link (and `#anchor`) of every page that leads to no doc or no heading,
    /// as `page → link`.
    pub(crate) fn broken_links(&self) -> Vec<String> {
        let mut broken = Vec::new();
        for doc in self.docs.iter().filter(|doc| doc.is_page()) {
            for link in &doc.links {
                if link.contains(':') || link.starts_with('/') || link.starts_with("//") {
                    continue;
                }
                let (target, fragment) = match link.split_once('#') {
                    Some((target, fragment)) => (target, Some(fragment)),
                    None => (link.as_str(), None),
                };
                let target = target.split('?').next().unwrap_or("");
                let resolved = if target.is_empty() {
                    Some(doc)
                } else {
                    resolve(&doc.url(), target)
                        .and_then(|url| self.by_url.get(&url).map(|&index| &self.docs[index]))
                };
                let ok = match (resolved, fragment) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(found), Some(fragment)) => found
                        .sections
                        .iter()
                        .any(|section| section.anchor == fragment),
                };
                if !ok {
                    broken.push(format!("{} → {link}", doc.url()));
                }
            }
        }
        broken
    }
}

/// `base`'s folder joined with the relative `target`, with `.` and `..` applied; `None` when
/// it climbs above the root.
pub(crate) fn resolve(base: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
                if parts.is_empty() {
                    return None;
                }
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn render(segment: &'static str, file: &EmbeddedFile) -> Doc {
    let extension = file
        .path
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::str::from_utf8(file.bytes).ok();
    let kind = match (extension.as_str(), text) {
        ("md" | "markdown", Some(text)) => Kind::Markdown(markdown(text)),
        ("html" | "htm", Some(_)) => Kind::Html,
        _ => Kind::File,
    };
    // The rendered page for Markdown, the file itself for HTML.
    let scanned = match (&kind, text) {
        (Kind::Markdown(html), _) => scan(html),
        (Kind::Html, Some(text)) => scan(text),
        _ => Scanned::default(),
    };
    let file_name = file.path.rsplit('/').next().unwrap_or(file.path);
    let title = scanned
        .title
        .clone()
        .or_else(|| {
            scanned
                .sections
                .iter()
                .find(|section| !section.heading.is_empty())
                .map(|section| section.heading.clone())
        })
        .unwrap_or_else(|| file_name.to_string());
    Doc {
        segment,
        path: file.path,
        title,
        kind,
        bytes: file.bytes,
        sections: scanned.sections,
        links: scanned.links,
    }
}

/// GitHub-flavoured Markdown: tables, task lists, strikethrough, autolinks, footnotes,
/// heading ids; raw HTML is shown as text, never interpreted.
pub(crate) fn markdown(text: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.tasklist = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.footnotes = true;
    options.extension.header_id_prefix = Some(String::new());
    options.render.escape = true;
    comrak::markdown_to_html(text, &options)
}

#[derive(Default)]
struct Scanned {
    title: Option<String>,
    sections: Vec<Section>,
    links: Vec<String>,
}

/// Reads an HTML text once: its `<title>`, its text split at headings (with their ids), and
/// every `href`. Not a full HTML parser; it only has to read what comrak writes and what a
/// plugin author puts in an `.html` doc.
fn scan(html: &str) -> Scanned {
    let mut scanned = Scanned::default();
    let mut current = Section {
        anchor: String::new(),
        heading: String::new(),
        text: String::new(),
    };
    let mut in_heading = false;
    let mut in_title = false;
    let mut title = String::new();
    let mut skip_until: Option<&str> = None;
    let mut rest = html;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            push_text(&mut current, in_heading, rest);
            break;
        };
        let (text, after) = rest.split_at(open);
        if skip_until.is_none() {
            if in_title {
                title.push_str(&decode(text));
            } else {
                push_text(&mut current, in_heading, text);
            }
        }
        let Some(close) = after.find('>') else {
            break;
        };
        let tag = &after[1..close];
        rest = &after[close + 1..];
        if tag.starts_with("!--") {
            // A comment may hold `>`; skip to its real end.
            if let Some(end) = after.find("-->") {
                rest = &after[end + 3..];
            }
            continue;
        }
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        if let Some(until) = skip_until {
            if closing && name == until {
                skip_until = None;
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("script", false) => skip_until = Some("script"),
            ("style", false) => skip_until = Some("style"),
            ("title", false) => in_title = true,
            ("title", true) => in_title = false,
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", false) => {
                let previous = std::mem::replace(
                    &mut current,
                    Section {
                        anchor: attribute(tag, "id").unwrap_or_default(),
                        heading: String::new(),
                        text: String::new(),
                    },
                );
                if !previous.heading.is_empty() || !previous.text.trim().is_empty() {
                    scanned.sections.push(previous);
                }
                in_heading = true;
            }
            ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", true) => in_heading = false,
            ("p" | "li" | "tr" | "td" | "th" | "br" | "pre" | "div", _) => {
                push_text(&mut current, false, " ");
            }
            _ => {}
        }
        if !closing && let Some(href) = attribute(tag, "href") {
            scanned.links.push(href);
        }
    }
    if !current.heading.is_empty() || !current.text.trim().is_empty() {
        scanned.sections.push(current);
    }
    for section in &mut scanned.sections {
        section.heading = collapse(&section.heading);
        section.text = collapse(&section.text);
    }
    let title = collapse(&title);
    scanned.title = (!title.is_empty()).then_some(title);
    scanned
}

fn push_text(section: &mut Section, in_heading: bool, text: &str) {
    let target = if in_heading {
        &mut section.heading
    } else {
        &mut section.text
    };
    target.push_str(&decode(text));
}

/// Whitespace runs become one space.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of `name="…"` (or `'…'`) in a start tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        from = start + name.len();
        let before_ok = start > 0 && lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = tag[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value = rest[1..].trim_start();
        let quote = value.chars().next()?;
        if quote == '"' || quote == '\'' {
            let end = value[1..].find(quote)?;
            return Some(decode(&value[1..1 + end]));
        }
        let end = value
            .find(|c: char| c.is_whitespace() || c == '>')
            .unwrap_or(value.len());
        return Some(decode(&value[..end]));
    }
    None
}

/// The entities comrak writes, and numeric ones.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // Bytes, not a `str` slice: the twelfth byte may fall inside a character (`…`).
        let Some(end) = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&byte| byte == b';')
        else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ampersand_before_a_wide_character_decodes_without_panicking() {
        assert_eq!(decode("&quot;&gt;…&lt;/main&gt;"), "\">…</main>");
        assert_eq!(decode("&…;"), "&…;");
    }

    #[test]
    fn markdown_has_anchors_and_tables_and_escapes_raw_html() {
        let html = markdown(
            "# Title\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Two words\n",
        );
        assert!(html.contains(r#"<h1 id="title">"#), "{html}");
        assert!(html.contains(r#"<h2 id="two-words">"#), "{html}");
        assert!(html.contains("<table>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn scanning_splits_at_headings_and_collects_links() {
        let scanned = scan(&markdown(
            "Intro text.\n\n# Usage\n\nRun [it](other.md#setup) &amp; see.\n\n## Setup <b>\n\nMore `code`.\n",
        ));
        let sections: Vec<(&str, &str, &str)> = scanned
            .sections
            .iter()
            .map(|s| (s.anchor.as_str(), s.heading.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(
            sections,
            [
                ("", "", "Intro text."),
                ("usage", "Usage", "Run it & see."),
                ("setup-", "Setup <b>", "More code."),
            ]
        );
        assert!(scanned.links.contains(&"other.md#setup".to_string()));
        let page = scan(
            "<html><head><title>API &amp; more</title><style>h1{}</style></head><body><h1 id='x'>X</h1><script>var a='<h2>';</script>body</body></html>",
        );
        assert_eq!(page.title.as_deref(), Some("API & more"));
        assert_eq!(page.sections.len(), 1);
        assert_eq!(page.sections[0].text, "body");
    }

    #[test]
    fn relative_links_resolve_inside_docs_only() {
        assert_eq!(
            resolve("/docs/a/README.md", "usage.md").as_deref(),
            Some("/docs/a/usage.md")
        );
        assert_eq!(
            resolve("/docs/a/guide/x.md", "../y.md").as_deref(),
            Some("/docs/a/y.md")
        );
        assert_eq!(
            resolve("/docs/a/README.md", "../b/README.md").as_deref(),
            Some("/docs/b/README.md")
        );
        assert_eq!(resolve("/docs/a/README.md", "../../../x").as_deref(), None);
    }
}
