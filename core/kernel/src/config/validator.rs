//! The JSON Schema validator (the `validation` feature): where a document breaks the schema,
//! as issues that say how to fix it (the key that was meant, the section a key belongs in).

use std::collections::BTreeSet;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::registry::Registry;

use super::ConfigIssue;
use super::issues::{MAX_PROBLEM_CHARS, cut, is_secret_key};
use super::schema::{pointer_token, schema, schema_with_sections, section_properties};
use super::secret::REDACTED;
use super::suggest::closest;

/// Every place where `document` breaks the schema of the plugins in `registry`.
pub(super) fn schema_issues(document: &Value, registry: &Registry) -> Vec<ConfigIssue> {
    let present = document
        .pointer("/plugins")
        .and_then(Value::as_object)
        .map(|sections| sections.keys().map(String::as_str).collect::<BTreeSet<_>>())
        .unwrap_or_default();
    let needed = schema_with_sections(registry, |name| present.contains(name));
    // Messages look beyond the sections written (`bind` belongs in `[server]`, a key of
    // another plugin's section), so a document with problems gets the whole schema for them;
    // schema paths are the same in both.
    // A plugin's broken `#[schemars]` attribute (a bad regex) is therefore reported when its
    // section is written, not for every file; the test suite compiles the whole schema.
    let whole = std::cell::OnceCell::new();
    let whole_schema = || whole.get_or_init(|| schema(registry));
    match jsonschema::validator_for(&needed) {
        Ok(validator) => validator
            .iter_errors(document)
            .flat_map(|error| issues_of(&error, &whole_schema))
            .collect(),
        // Only a plugin's `#[config]` attributes (a bad `regex`, say) can break the
        // generated schema; say so instead of panicking.
        Err(error) => vec![ConfigIssue::new(
            "",
            None,
            format!(
                "the configuration schema generated from the compiled-in plugins does not \
                 compile at {} ({error}): a plugin's `#[schemars(...)]` attributes are wrong",
                error.schema_path()
            ),
        )],
    }
}

/// The issues one validation error becomes; `whole_schema` is the schema of every plugin,
/// built only when a message needs it.
fn issues_of<'s>(
    error: &ValidationError<'_>,
    whole_schema: &dyn Fn() -> &'s Value,
) -> Vec<ConfigIssue> {
    let pointer = error.instance_path().as_str().to_string();
    let instance = error.instance();
    match error.kind() {
        // The validator's "Additional properties are not allowed ('bnid' was unexpected)" at
        // the section becomes one issue per key, at the key, that says what the section
        // accepts.
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|key| {
                // The keyword's location without `$ref`s: its parent is the section's own
                // schema, whose `properties` are the valid keys.
                let keys: Vec<&str> = error
                    .schema_path()
                    .as_str()
                    .strip_suffix("/additionalProperties")
                    .and_then(|section| whole_schema().pointer(section))
                    .and_then(|node| node.get("properties"))
                    .and_then(Value::as_object)
                    .map(|properties| properties.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                unknown_key(whole_schema(), &pointer, &keys, key, instance.get(key))
            })
            .collect(),
        ValidationErrorKind::Enum { options } => {
            let mut problem = error.to_string();
            if let (Value::String(written), Value::Array(options)) = (&**instance, &**options)
                && let Some(near) = closest(written, options.iter().filter_map(Value::as_str))
            {
                problem.push_str(&format!("; did you mean \"{near}\"?"));
            }
            vec![ConfigIssue::new(
                pointer,
                Some(instance.clone().into_owned()),
                problem,
            )]
        }
        _ => vec![ConfigIssue::new(
            pointer,
            Some(instance.clone().into_owned()),
            error.to_string(),
        )],
    }
}

/// The issue for `key`, which the section at `pointer` does not accept: the closest of the
/// `keys` it does accept, or the section where `key` belongs, then all those `keys` (none
/// when the schema does not list them).
fn unknown_key(
    schema: &Value,
    pointer: &str,
    keys: &[&str],
    key: &str,
    found: Option<&Value>,
) -> ConfigIssue {
    let mut problem = match section_name(pointer) {
        Some(section) => format!("unknown key `{key}` in {section}"),
        None => format!("unknown top-level key `{key}`"),
    };
    let near = closest(key, keys.iter().copied());
    if let Some(near) = near {
        problem.push_str(&format!("; did you mean `{near}`?"));
    } else if let Some(home) = home_of(schema, pointer, key) {
        problem.push_str(&format!("; {home}"));
    }
    if !keys.is_empty() {
        // After a question the list is a sentence of its own.
        let separator = if problem.ends_with('?') { " " } else { "; " };
        problem.push_str(&format!("{separator}valid keys: {}", keys.join(", ")));
    }
    let escaped = pointer_token(key);
    // A misspelt secret key (`admin_tokn`) holds a secret all the same.
    let found = match near {
        Some(near) if is_secret_key(near) => found.map(|_| Value::String(REDACTED.to_string())),
        _ => found.cloned(),
    };
    // Built empty and given its problem afterwards: the problem names keys, never the value,
    // so the scrubbing of secret values that `new` does to a problem text has nothing to
    // remove there, and could only mangle key names that contain a short secret.
    let mut issue = ConfigIssue::new(format!("{pointer}/{escaped}"), found, "");
    issue.problem = cut(&problem, MAX_PROBLEM_CHARS);
    issue
}

/// Where `key`, unknown at `pointer`, belongs, if it is a plugin's name or a key of another
/// section: `[plugins.my_awesome_plugin]` written as `[my_awesome_plugin]`, or `bind` written
/// above the `[server]` header or below another one.
fn home_of(schema: &Value, pointer: &str, key: &str) -> Option<String> {
    let plugins = schema
        .pointer("/properties/plugins/properties")?
        .as_object()?;
    if pointer.is_empty() && plugins.contains_key(key) {
        return Some(format!("a plugin's settings go in `[plugins.{key}]`"));
    }
    let sections = ["server", "data", "events", "health"]
        .into_iter()
        .map(|name| (name.to_string(), format!("/properties/{name}")))
        .chain(plugins.keys().map(|name| {
            (
                format!("plugins.{name}"),
                format!("/properties/plugins/properties/{name}"),
            )
        }));
    sections
        .filter(|(name, _)| pointer != format!("/{}", name.replace('.', "/")))
        .find(|(_, node)| {
            section_properties(schema, node).is_some_and(|keys| keys.contains_key(key))
        })
        .map(|(name, _)| format!("it belongs in `[{name}]`"))
}

/// How an operator writes the section at `pointer`: `[server]`,
/// `[plugins.my_awesome_plugin]`; `None` for the top level.
fn section_name(pointer: &str) -> Option<String> {
    let mut name = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            name.push_str(&format!("[{segment}]"));
        } else {
            if !name.is_empty() {
                name.push('.');
            }
            name.push_str(&segment);
        }
    }
    (!name.is_empty()).then(|| format!("`[{name}]`"))
}
