//! What `#[route]` records of a handler's types for the OpenAPI document: each argument and
//! the return type are probed, and those that document themselves ([`InputDoc`],
//! [`OutputDoc`]: `Json<T>`, `Query<T>`, `Path<T>`, `Html`, …) add parameters, a request
//! body or responses with JSON Schemas from schemars. Any other type adds nothing.
//!
//! The probe is autoref specialisation: generated code calls `(&&Probe::<T>::new()).input(d)`,
//! which resolves to [`ProbeInput`] when `T: InputDoc` and to the do-nothing
//! [`ProbeInputFallback`] otherwise. The choice is made where the handler's concrete types
//! are known, so a route needs no extra attribute and no type needs a second derive.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// Collects one operation's parameters, body and responses.
pub struct Describer {
    requests: SchemaGenerator,
    responses: SchemaGenerator,
    /// Query parameters.
    #[doc(hidden)]
    pub query: Vec<Value>,
    /// The schema of the `Path<T>` extractor's `T`, matched to the path's parameters later.
    #[doc(hidden)]
    pub path: Option<Value>,
    /// The `requestBody` object.
    #[doc(hidden)]
    pub body: Option<Value>,
    /// Responses by status (`"200"`, `"2XX"`, …).
    #[doc(hidden)]
    pub responses_by_status: BTreeMap<String, Value>,
    /// Whether the operation needs the admin token (the route takes `Admin`).
    #[doc(hidden)]
    pub admin: bool,
    /// The bearer scheme the operation needs besides (name, description): a plugin's own
    /// credentials, such as a person's access token.
    #[doc(hidden)]
    pub bearer: Option<(&'static str, &'static str)>,
}

fn generator(contract: Contract) -> SchemaGenerator {
    let mut settings = SchemaSettings::draft2020_12();
    // Inlined, so that a type parsed and written differently (a field skipped when empty)
    // never needs two definitions under one name; only recursive types leave a definition.
    settings.inline_subschemas = true;
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    settings.contract = contract;
    settings.into_generator()
}

impl Default for Describer {
    fn default() -> Self {
        Describer {
            requests: generator(Contract::Deserialize),
            responses: generator(Contract::Serialize),
            query: Vec::new(),
            path: None,
            body: None,
            responses_by_status: BTreeMap::new(),
            admin: false,
            bearer: None,
        }
    }
}

impl Describer {
    /// The schema of `T` as requests carry it (what deserialising accepts).
    pub fn request_schema<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// The schema of `T` as responses carry it (what serialising writes).
    pub fn response_schema<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    /// `T`'s fields as query parameters; a `T` that is no object is one `form` parameter.
    pub fn query<T: JsonSchema>(&mut self, required: bool) {
        let schema = self.request_schema::<T>();
        let needed: Vec<&str> = schema["required"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match schema["properties"].as_object() {
            Some(properties) => {
                for (name, property) in properties {
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": required && needed.contains(&name.as_str()),
                        "schema": without_description(property),
                    });
                    if let Some(description) = property.get("description") {
                        parameter["description"] = description.clone();
                    }
                    self.query.push(parameter);
                }
            }
            None => self.query.push(json!({
                "name": "query",
                "in": "query",
                "style": "form",
                "explode": true,
                "schema": schema,
            })),
        }
    }

    /// The operation needs the admin token.
    pub fn requires_admin(&mut self) {
        self.admin = true;
    }

    /// The operation needs a bearer token of the scheme `name` (`"accessToken"`), which the
    /// document's `securitySchemes` describes with `description`: what an extractor that
    /// authenticates a plugin's own users says of itself.
    pub fn requires_bearer(&mut self, name: &'static str, description: &'static str) {
        self.bearer = Some((name, description));
    }

    /// The `Path<T>` extractor's `T`.
    pub fn path<T: JsonSchema>(&mut self) {
        self.path = Some(self.request_schema::<T>());
    }

    /// The request body.
    pub fn body(&mut self, content_type: &str, schema: Value, required: bool) {
        self.body = Some(json!({
            "required": required,
            "content": { content_type: { "schema": schema } },
        }));
    }

    /// A response for `status` (`"200"`, `"2XX"`, `"3XX"`), with its body's type and schema
    /// when it has one.
    pub fn response(&mut self, status: &str, description: &str, content: Option<(&str, Value)>) {
        let mut response = json!({ "description": description });
        if let Some((content_type, schema)) = content {
            response["content"] = json!({ content_type: { "schema": schema } });
        }
        self.responses_by_status
            .insert(status.to_string(), response);
    }

    /// Adds another representation of the response described under `status` (an answer
    /// that is JSON, or server-sent events when asked).
    pub fn alternative(&mut self, status: &str, content_type: &str, schema: Value) {
        if let Some(response) = self.responses_by_status.get_mut(status) {
            response["content"][content_type] = json!({ "schema": schema });
        }
    }

    /// Re-files the responses described so far under `status`: what a `(StatusCode, R)`
    /// does to `R`'s.
    pub fn restatus(&mut self, status: &str) {
        let described = std::mem::take(&mut self.responses_by_status);
        for (_, response) in described {
            self.responses_by_status
                .insert(status.to_string(), response);
        }
    }

    /// Definitions that could not be inlined (recursive types), for `components/schemas`.
    pub fn take_definitions(&mut self) -> Map<String, Value> {
        let mut definitions = self.requests.take_definitions(true);
        definitions.extend(self.responses.take_definitions(true));
        definitions
    }
}

/// A parameter's schema keeps its type; its description moves to the parameter.
fn without_description(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        object.remove("description");
    }
    schema
}

/// A handler argument that documents itself: a parameter source or a request body.
pub trait InputDoc {
    /// Adds what this argument reads from the request.
    fn describe_input(describer: &mut Describer);
}

/// A handler return type that documents itself: its responses.
pub trait OutputDoc {
    /// Adds the responses this type produces.
    fn describe_output(describer: &mut Describer);
}

/// A type to probe; never holds a value.
pub struct Probe<T: ?Sized>(PhantomData<fn() -> PhantomData<T>>);

impl<T: ?Sized> Probe<T> {
    /// The probe of `T`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

/// Stands for a return type generated code cannot name (`impl IntoResponse`).
pub struct Undescribed;

/// The probe of an argument that documents itself.
pub trait ProbeInput {
    /// Adds what the argument reads.
    fn input(&self, describer: &mut Describer);
}

impl<T: InputDoc + ?Sized> ProbeInput for &Probe<T> {
    fn input(&self, describer: &mut Describer) {
        T::describe_input(describer);
    }
}

/// The probe of any other argument (plugin state, headers, …): nothing to add.
pub trait ProbeInputFallback {
    /// Adds nothing.
    fn input(&self, _describer: &mut Describer) {}
}

impl<T: ?Sized> ProbeInputFallback for Probe<T> {}

/// The probe of a return type that documents itself.
pub trait ProbeOutput {
    /// Adds the type's responses.
    fn output(&self, describer: &mut Describer);
}

impl<T: OutputDoc + ?Sized> ProbeOutput for &Probe<T> {
    fn output(&self, describer: &mut Describer) {
        T::describe_output(describer);
    }
}

/// The probe of any other return type: a response whose body is not described.
pub trait ProbeOutputFallback {
    /// Adds a `200` whose body is not described.
    fn output(&self, describer: &mut Describer) {
        describer.response("200", "a response whose body is not described", None);
    }
}

impl<T: ?Sized> ProbeOutputFallback for Probe<T> {}

// How the framework's own argument and return types document themselves.

/// An argument that may be absent, so that `Option<T>` documents itself as optional: the web
/// crate's `Json<T>` (an optional body) and `Query<T>` (optional parameters).
pub trait OptionalInputDoc {
    /// Describes the argument as not required.
    fn describe_optional_input(describer: &mut Describer);
}

impl<T: OptionalInputDoc> InputDoc for Option<T> {
    fn describe_input(describer: &mut Describer) {
        T::describe_optional_input(describer);
    }
}

impl InputDoc for String {
    fn describe_input(describer: &mut Describer) {
        describer.body("text/plain", json!({ "type": "string" }), true);
    }
}

impl InputDoc for axum::body::Bytes {
    fn describe_input(describer: &mut Describer) {
        describer.body("application/octet-stream", json!({}), true);
    }
}

impl<T> OutputDoc for axum::response::Html<T> {
    fn describe_output(describer: &mut Describer) {
        let schema = json!({ "type": "string" });
        describer.response("200", "an HTML page", Some(("text/html", schema)));
    }
}

impl OutputDoc for String {
    fn describe_output(describer: &mut Describer) {
        let schema = json!({ "type": "string" });
        describer.response("200", "text", Some(("text/plain", schema)));
    }
}

impl OutputDoc for &'static str {
    fn describe_output(describer: &mut Describer) {
        String::describe_output(describer);
    }
}

impl OutputDoc for axum::response::Redirect {
    fn describe_output(describer: &mut Describer) {
        describer.response("3XX", "a redirect to the `Location` header's URL", None);
    }
}

impl OutputDoc for axum::response::NoContent {
    fn describe_output(describer: &mut Describer) {
        describer.response("204", "done; no body", None);
    }
}

impl OutputDoc for () {
    fn describe_output(describer: &mut Describer) {
        describer.response("200", "done; no body", None);
    }
}

impl OutputDoc for axum::http::StatusCode {
    fn describe_output(describer: &mut Describer) {
        describer.response("2XX", "done; no body", None);
    }
}

impl<R: OutputDoc> OutputDoc for (axum::http::StatusCode, R) {
    fn describe_output(describer: &mut Describer) {
        R::describe_output(describer);
        describer.restatus("2XX");
    }
}

/// The success is `R`'s; every failure is the `default` error response each operation has.
impl<R: OutputDoc> OutputDoc for Result<R, crate::error::ApiError> {
    fn describe_output(describer: &mut Describer) {
        R::describe_output(describer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Documented;
    impl InputDoc for Documented {
        fn describe_input(describer: &mut Describer) {
            describer.body("text/plain", json!({ "type": "string" }), true);
        }
    }
    struct Undocumented;

    #[test]
    // The second borrow is the point: it is what selects the documenting impl.
    #[allow(clippy::needless_borrow)]
    fn the_probe_picks_the_documenting_impl_when_there_is_one() {
        let mut describer = Describer::default();
        (&&Probe::<Undocumented>::new()).input(&mut describer);
        assert!(describer.body.is_none());
        (&&Probe::<Documented>::new()).input(&mut describer);
        assert!(describer.body.is_some());
        (&&Probe::<Undocumented>::new()).output(&mut describer);
        assert_eq!(
            describer.responses_by_status["200"]["description"],
            "a response whose body is not described"
        );
    }

    #[test]
    fn query_fields_become_parameters_with_their_descriptions() {
        #[derive(JsonSchema)]
        #[allow(dead_code)]
        struct Search {
            /// What to look for.
            q: String,
            limit: Option<u32>,
        }
        let mut describer = Describer::default();
        describer.query::<Search>(true);
        assert_eq!(describer.query.len(), 2);
        // The order of the fields depends on serde_json's `preserve_order`, which feature
        // unification may or may not turn on: look them up by name.
        let named = |name: &str| {
            describer
                .query
                .iter()
                .find(|parameter| parameter["name"] == name)
                .unwrap()
        };
        let q = named("q");
        assert_eq!(
            (&q["in"], &q["required"], &q["description"]),
            (&json!("query"), &json!(true), &json!("What to look for."))
        );
        assert_eq!(named("limit")["required"], false);
    }
}
