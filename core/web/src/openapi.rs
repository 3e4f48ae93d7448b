//! The OpenAPI 3.1 document of every route a binary serves: the core and admin routes,
//! described here, and every plugin's `#[route]`s and UI pages, described by what the macros
//! recorded (doc comments, and the schemas of `Json<T>`, `Query<T>`, `Path<T>` arguments and
//! return types). It depends on the registry only, so `plexichat openapi` prints it without
//! a server.

use serde_json::{Map, Value, json};

use crate::input::{Json, Path, Query};
use crate::{assets, core_routes};
use plexichat_kernel::abi::openapi::{Describer, InputDoc, OptionalInputDoc, OutputDoc};
use plexichat_kernel::registry::Registry;
use plexichat_kernel::runtime::Plugins;

/// The tag of the server's own public routes.
const CORE_TAG: &str = "core";
/// The tag of the admin API.
const ADMIN_TAG: &str = "admin";
/// The security scheme every admin route requires.
const ADMIN_SCHEME: &str = "adminToken";

impl<T: schemars::JsonSchema> InputDoc for Json<T> {
    fn describe_input(describer: &mut Describer) {
        let schema = describer.request_schema::<T>();
        describer.body("application/json", schema, true);
    }
}

impl<T: schemars::JsonSchema> OptionalInputDoc for Json<T> {
    fn describe_optional_input(describer: &mut Describer) {
        let schema = describer.request_schema::<T>();
        describer.body("application/json", schema, false);
    }
}

impl<T: schemars::JsonSchema> InputDoc for Query<T> {
    fn describe_input(describer: &mut Describer) {
        describer.query::<T>(true);
    }
}

impl<T: schemars::JsonSchema> OptionalInputDoc for Query<T> {
    fn describe_optional_input(describer: &mut Describer) {
        describer.query::<T>(false);
    }
}

impl<T: schemars::JsonSchema> InputDoc for Path<T> {
    fn describe_input(describer: &mut Describer) {
        describer.path::<T>();
    }
}

impl<T: schemars::JsonSchema> OutputDoc for Json<T> {
    fn describe_output(describer: &mut Describer) {
        let schema = describer.response_schema::<T>();
        describer.response("200", "the result", Some(("application/json", schema)));
    }
}

/// A route that takes `Admin` needs the admin token.
impl InputDoc for crate::admin::Admin {
    fn describe_input(describer: &mut Describer) {
        describer.requires_admin();
    }
}

/// The body of every error answer.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every error, as an RFC 9457 problem: what went wrong (`detail`, repeated as `error`), a stable `code` to branch on, and sometimes details naming the field, plugin or state concerned.",
        "required": ["type", "title", "status", "detail", "error", "code"],
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer" },
            "detail": { "type": "string" },
            "error": { "type": "string" },
            "code": { "type": "string" },
            "field": { "type": "string" },
        },
        "additionalProperties": true,
    })
}

/// The answer every operation may give besides its own: an error with a JSON body (404, 408,
/// 413, 429, 503 while the plugin is not running, 500 when it panics, …).
fn error_response() -> Value {
    json!({
        "description": "an error",
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

/// One operation, from its parts.
struct Operation<'a> {
    path: &'a str,
    id: String,
    tag: &'a str,
    doc: &'a str,
    describer: Describer,
    admin: bool,
}

impl Operation<'_> {
    /// The OpenAPI path (`{*rest}` becomes `{rest}`) and the operation object.
    fn render(
        mut self,
        definitions: &mut Map<String, Value>,
        schemes: &mut Map<String, Value>,
    ) -> (String, Value) {
        let (path, names) = template(self.path);
        let mut parameters: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": path_parameter_schema(self.describer.path.as_ref(), index, name, names.len()),
                })
            })
            .collect();
        parameters.append(&mut self.describer.query);
        let (summary, description) = split_doc(self.doc);
        let mut operation = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": summary,
        });
        if !description.is_empty() {
            operation["description"] = json!(description);
        }
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = self.describer.body.take() {
            operation["requestBody"] = body;
        }
        let mut responses: Map<String, Value> =
            std::mem::take(&mut self.describer.responses_by_status)
                .into_iter()
                .collect();
        if responses.is_empty() {
            responses.insert(
                "200".into(),
                json!({ "description": "a response whose body is not described" }),
            );
        }
        responses.insert("default".into(), error_response());
        operation["responses"] = Value::Object(responses);
        if self.admin {
            operation["security"] = json!([{ ADMIN_SCHEME: [] }]);
        } else if let Some((scheme, description)) = self.describer.bearer {
            operation["security"] = json!([{ scheme: [] }]);
            schemes.entry(scheme).or_insert_with(
                || json!({ "type": "http", "scheme": "bearer", "description": description }),
            );
        }
        definitions.extend(self.describer.take_definitions());
        (path, operation)
    }
}

/// A path in OpenAPI's template syntax and its parameter names, in order.
fn template(path: &str) -> (String, Vec<String>) {
    let mut names = Vec::new();
    let segments: Vec<String> = path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let name = name.trim_start_matches('*').to_string();
                    let rendered = format!("{{{name}}}");
                    names.push(name);
                    rendered
                }
                None => segment.to_string(),
            },
        )
        .collect();
    (segments.join("/"), names)
}

/// The schema of path parameter `name` (number `index` of `count`), from the `Path<T>`
/// extractor's schema: a tuple's item, a struct's field, or `T` itself when it is the only
/// one; a string when the handler does not extract it.
fn path_parameter_schema(schema: Option<&Value>, index: usize, name: &str, count: usize) -> Value {
    let string = json!({ "type": "string" });
    let Some(schema) = schema else {
        return string;
    };
    if let Some(items) = schema["prefixItems"].as_array() {
        return items.get(index).cloned().unwrap_or(string);
    }
    if let Some(property) = schema["properties"].get(name) {
        return property.clone();
    }
    if count == 1 && schema.get("properties").is_none() {
        return schema.clone();
    }
    string
}

/// The summary (the first paragraph, on one line) and the rest of a doc comment.
fn split_doc(doc: &str) -> (String, String) {
    let doc = doc.trim();
    let (first, rest) = doc.split_once("\n\n").unwrap_or((doc, ""));
    (
        first.split_whitespace().collect::<Vec<_>>().join(" "),
        rest.trim().to_string(),
    )
}

/// The OpenAPI 3.1 document the server that `plugins` views serves at `/openapi.json`, for a
/// plugin that declares `plugins:read` (the docs plugin's API reference).
pub fn served(plugins: &Plugins) -> Value {
    let runtime = plexichat_kernel::runtime::behind::plugins(plugins);
    let metrics_on_main = runtime.current_config().server.metrics_bind.is_none();
    document(runtime.registry(), metrics_on_main)
}

/// The OpenAPI 3.1 document of everything `registry`'s binary serves. `metrics_on_main`:
/// whether `/metrics` is on the main address (no `[server] metrics_bind`).
pub fn document(registry: &Registry, metrics_on_main: bool) -> Value {
    let mut paths = Paths::default();
    paths.definitions.insert("Error".into(), error_schema());
    core_operations(&mut paths, registry, metrics_on_main);
    plugin_operations(&mut paths, registry);
    ui_operations(&mut paths, registry);
    let mut schemes = std::mem::take(&mut paths.schemes);
    schemes.insert(
        ADMIN_SCHEME.into(),
        json!({
            "type": "http",
            "scheme": "bearer",
            "description": "The admin token: `[server] admin_token`, `PLEXICHAT_ADMIN_TOKEN`, or the data folder's `admin_token` file.",
        }),
    );
    let mut tags = vec![
        json!({ "name": CORE_TAG, "description": "The server's own routes: health, readiness, the plugin list." }),
        json!({ "name": ADMIN_TAG, "description": "The admin API: the bearer token, or a browser session with its CSRF token." }),
    ];
    tags.extend(
        registry
            .plugins()
            .iter()
            .map(|plugin| json!({ "name": plugin.name, "description": plugin.description })),
    );
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "PlexiChat",
            "version": plexichat_kernel::abi::expansion::VERSION,
            "description": "Every route of this binary: the core and admin routes and those of its compiled-in plugins, one tag per plugin.",
        },
        "tags": tags,
        "paths": paths.paths,
        "components": {
            "schemas": paths.definitions,
            "securitySchemes": schemes,
        },
    })
}

/// The document's operations by path, and the schemas they share.
#[derive(Default)]
struct Paths {
    paths: Map<String, Value>,
    definitions: Map<String, Value>,
    /// Plugins' bearer schemes, by name.
    schemes: Map<String, Value>,
}

impl Paths {
    /// Renders `operation` under its path and `method`.
    fn add(&mut self, method: &str, operation: Operation<'_>) {
        let (path, rendered) = operation.render(&mut self.definitions, &mut self.schemes);
        let entry = self.paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = rendered;
    }
}

/// Core's own routes, from their rows; a `{name}` is a compiled-in plugin's name (others get
/// 404).
fn core_operations(paths: &mut Paths, registry: &Registry, metrics_on_main: bool) {
    let plugin_names: Vec<&str> = registry
        .plugins()
        .iter()
        .map(|plugin| plugin.name)
        .collect();
    for route in core_routes::all(metrics_on_main) {
        let mut describer = Describer::default();
        (route.describe)(&mut describer);
        if route.path.contains("{name}") {
            describer.path = Some(json!({ "type": "string", "enum": plugin_names }));
        }
        let admin = route.access.needs_admin();
        let operation = Operation {
            path: route.path,
            id: route.id.to_string(),
            tag: if admin || route.path.starts_with("/api/v1/admin") {
                ADMIN_TAG
            } else {
                CORE_TAG
            },
            doc: route.doc,
            describer,
            admin,
        };
        paths.add(&route.method.as_str().to_ascii_lowercase(), operation);
    }
}

/// Every `#[route]`, described by what its macro recorded; tagged with its plugin.
fn plugin_operations(paths: &mut Paths, registry: &Registry) {
    for route in registry.routes() {
        let mut describer = Describer::default();
        (route.descriptor.describe)(&mut describer);
        let method = route.descriptor.method.as_str().to_ascii_lowercase();
        let doc = if route.descriptor.doc.is_empty() {
            route.descriptor.handler
        } else {
            route.descriptor.doc
        };
        let admin = describer.admin;
        let operation = Operation {
            path: &route.full_path,
            id: format!("{}.{}", route.plugin, route.descriptor.handler),
            tag: route.plugin,
            doc,
            describer,
            admin,
        };
        paths.add(&method, operation);
    }
}

/// The three routes of each plugin with UI pages: the redirect to a page's folder, its
/// `index.html`, and its files (and the shared `static` folder's).
fn ui_operations(paths: &mut Paths, registry: &Registry) {
    for plugin in registry.plugins() {
        if plugin.ui_files.is_empty() {
            continue;
        }
        let mut pages: Vec<&str> = plugin.ui_pages.iter().map(|page| page.name).collect();
        pages.push("static");
        let [page_path, index_path, file_path] = assets::route_paths(plugin.name);
        let page = json!({ "type": "string", "enum": pages });
        let html = Some(("text/html", json!({ "type": "string" })));
        for (path, id, doc, path_schema, (status, answer, content)) in [
            (
                page_path,
                "ui_page_redirect",
                "Redirects to the page's folder (with a slash), keeping the query.",
                page.clone(),
                ("308", "a redirect to the page's folder", None),
            ),
            (
                index_path,
                "ui_page",
                "A UI page's `index.html`.",
                page.clone(),
                ("200", "the page", html),
            ),
            (
                file_path,
                "ui_file",
                "A file of a UI page, or of the plugin's shared `static` folder.",
                json!({ "type": "array", "prefixItems": [page, { "type": "string" }] }),
                (
                    "200",
                    "the file, with its content type, ETag and caching",
                    None,
                ),
            ),
        ] {
            let mut describer = Describer::default();
            describer.path = Some(path_schema);
            describer.response(status, answer, content);
            let operation = Operation {
                path: &path,
                id: format!("{}.{id}", plugin.name),
                tag: plugin.name,
                doc,
                describer,
                admin: false,
            };
            paths.add("get", operation);
        }
    }
}

/// Every (method, OpenAPI path) pair the document has, for tests and listings.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut operations = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for method in item.keys() {
                    operations.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    operations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axum_paths_become_openapi_templates() {
        assert_eq!(
            template("/docs/{plugin}/{*path}"),
            (
                "/docs/{plugin}/{path}".to_string(),
                vec!["plugin".to_string(), "path".to_string()]
            )
        );
        assert_eq!(template("/health"), ("/health".to_string(), vec![]));
    }

    #[test]
    fn path_parameters_take_their_schema_from_the_extractor() {
        let tuple = json!({ "type": "array", "prefixItems": [{ "type": "string" }, { "type": "integer" }] });
        assert_eq!(
            path_parameter_schema(Some(&tuple), 1, "id", 2),
            json!({ "type": "integer" })
        );
        let object = json!({ "type": "object", "properties": { "id": { "type": "integer" } } });
        assert_eq!(
            path_parameter_schema(Some(&object), 0, "id", 1),
            json!({ "type": "integer" })
        );
        let scalar = json!({ "type": "integer", "format": "uint32" });
        assert_eq!(path_parameter_schema(Some(&scalar), 0, "id", 1), scalar);
        assert_eq!(
            path_parameter_schema(None, 0, "id", 1),
            json!({ "type": "string" })
        );
    }

    #[test]
    fn the_first_paragraph_is_the_summary() {
        assert_eq!(
            split_doc("One line\ncontinued.\n\nMore here."),
            ("One line continued.".to_string(), "More here.".to_string())
        );
    }
}
