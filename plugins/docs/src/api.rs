//! The API reference at `/docs/api`: the binary's OpenAPI document rendered as one page,
//! by tag (the core, the admin API, then one section per plugin), each operation with its
//! parameters, request body and responses. Rendered on the server: no script, no CDN.

use plexichat::response::escape_html as escape;
use plexichat::serde_json::Value;

/// The page's `main`: a table of contents and every operation of `document`.
pub(crate) fn render(document: &Value) -> String {
    let empty = Vec::new();
    let tags = document["tags"].as_array().unwrap_or(&empty);
    let mut operations: Vec<(&str, &str, &Value)> = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for (method, operation) in item {
                    operations.push((path, method, operation));
                }
            }
        }
    }
    let mut out = String::from(
        "<h1>API reference</h1>\n<p>Every route this binary serves, from its OpenAPI 3.1 document \
         (<a href=\"/openapi.json\">/openapi.json</a>, also printed by <code>plexichat openapi</code>). \
         Admin routes need <code>Authorization: Bearer &lt;admin token&gt;</code>; every operation \
         may also answer an error with a JSON body <code>{\"error\": \"…\"}</code>.</p>\n",
    );
    out.push_str("<nav aria-label=\"API sections\" class=\"api-toc\"><ul>\n");
    for tag in tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let count = operations
            .iter()
            .filter(|(_, _, operation)| has_tag(operation, name))
            .count();
        if count > 0 {
            out.push_str(&format!(
                "<li><a href=\"#tag-{id}\">{name}</a> ({count})</li>\n",
                id = escape(name),
                name = escape(name)
            ));
        }
    }
    out.push_str("</ul></nav>\n");
    for tag in tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let mut mine: Vec<&(&str, &str, &Value)> = operations
            .iter()
            .filter(|(_, _, operation)| has_tag(operation, name))
            .collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by_key(|(path, method, _)| (*path, method_order(method)));
        out.push_str(&format!(
            "<section class=\"api-tag\" aria-labelledby=\"tag-{id}\">\n<h2 id=\"tag-{id}\">{name}</h2>\n<p>{description}</p>\n",
            id = escape(name),
            name = escape(name),
            description = escape(tag["description"].as_str().unwrap_or_default()),
        ));
        for (path, method, operation) in mine {
            out.push_str(&render_operation(path, method, operation));
        }
        out.push_str("</section>\n");
    }
    out
}

fn has_tag(operation: &Value, tag: &str) -> bool {
    operation["tags"]
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t == tag))
}

fn method_order(method: &str) -> usize {
    [
        "get", "post", "put", "patch", "delete", "head", "options", "trace",
    ]
    .iter()
    .position(|m| *m == method)
    .unwrap_or(usize::MAX)
}

fn render_operation(path: &str, method: &str, operation: &Value) -> String {
    let id = operation["operationId"].as_str().unwrap_or_default();
    let mut out = format!(
        "<article class=\"operation\" id=\"{id}\">\n<h3><span class=\"method method-{method}\">{upper}</span> <code>{path}</code></h3>\n<p>{summary}</p>\n",
        id = escape(id),
        method = escape(method),
        upper = escape(&method.to_ascii_uppercase()),
        path = escape(path),
        summary = escape(operation["summary"].as_str().unwrap_or_default()),
    );
    if let Some(description) = operation["description"].as_str() {
        for paragraph in description.split("\n\n") {
            out.push_str(&format!("<p>{}</p>\n", escape(paragraph)));
        }
    }
    if operation.get("security").is_some() {
        out.push_str("<p class=\"needs-admin\">Needs the admin token.</p>\n");
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        out.push_str(
            "<table>\n<caption>Parameters</caption>\n<thead><tr><th scope=\"col\">name</th><th scope=\"col\">in</th><th scope=\"col\">type</th><th scope=\"col\">required</th><th scope=\"col\">description</th></tr></thead>\n<tbody>\n",
        );
        for parameter in parameters {
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(parameter["name"].as_str().unwrap_or_default()),
                escape(parameter["in"].as_str().unwrap_or_default()),
                escape(&type_of(&parameter["schema"])),
                if parameter["required"] == true {
                    "yes"
                } else {
                    "no"
                },
                escape(parameter["description"].as_str().unwrap_or_default()),
            ));
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        for (content_type, media) in content {
            out.push_str(&format!(
                "<h4>Request body <code>{}</code>{}</h4>\n{}",
                escape(content_type),
                if operation["requestBody"]["required"] == true {
                    ""
                } else {
                    " (optional)"
                },
                schema_block(&media["schema"]),
            ));
        }
    }
    if let Some(responses) = operation["responses"].as_object() {
        out.push_str("<h4>Responses</h4>\n<dl class=\"responses\">\n");
        for (status, response) in responses {
            if status == "default" {
                continue;
            }
            out.push_str(&format!(
                "<dt>{}</dt>\n<dd>{}",
                escape(status),
                escape(response["description"].as_str().unwrap_or_default())
            ));
            if let Some(content) = response["content"].as_object() {
                for (content_type, media) in content {
                    out.push_str(&format!(" <code>{}</code>", escape(content_type)));
                    out.push_str(&schema_block(&media["schema"]));
                }
            }
            out.push_str("</dd>\n");
        }
        out.push_str("</dl>\n");
    }
    out.push_str("</article>\n");
    out
}

/// A schema as collapsible JSON, unless it says nothing.
fn schema_block(schema: &Value) -> String {
    if schema.as_object().is_none_or(|object| object.is_empty()) {
        return String::new();
    }
    let pretty = plexichat::serde_json::to_string_pretty(schema).unwrap_or_default();
    format!(
        "<details><summary>Schema: {}</summary>\n<pre><code>{}</code></pre>\n</details>\n",
        escape(&type_of(schema)),
        escape(&pretty)
    )
}

/// A schema's type in a few words: `string`, `integer`, `array of object`, `one of …`.
fn type_of(schema: &Value) -> String {
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", values.join(", "));
    }
    match &schema["type"] {
        Value::String(kind) if kind == "array" => format!("array of {}", type_of(&schema["items"])),
        Value::String(kind) => kind.clone(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("$ref").is_some() => schema["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or("object")
            .to_string(),
        _ => "any".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexichat::serde_json::json;

    #[test]
    fn types_read_in_a_few_words() {
        assert_eq!(
            type_of(&json!({ "type": "array", "items": { "type": "integer" } })),
            "array of integer"
        );
        assert_eq!(
            type_of(&json!({ "type": ["string", "null"] })),
            "string or null"
        );
        assert_eq!(
            type_of(&json!({ "enum": ["a", "b"] })),
            "one of \"a\", \"b\""
        );
        assert_eq!(type_of(&json!({})), "any");
    }
}
