//! Properties of every macro's expansion as a whole: the paths it names and where the crate
//! name comes from.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use quote::quote;

/// One valid use of each macro, expanded.
fn expansions() -> Vec<(&'static str, TokenStream)> {
    vec![
        (
            "plugin",
            crate::plugin::expand(
                quote!(
                    type = micro_app,
                    dependencies = [other::Other],
                    ui_pages = [{ name = "main", path = "tests/ui/main", title = "Main" }],
                    config = Settings,
                    lifecycle = true,
                    min_plexichat_version = "0.1.0",
                    permissions = ["plugin:read", "database", "plugins:read"],
                ),
                quote!(
                    struct MyPlugin;
                ),
            ),
        ),
        (
            "plugin without min_plexichat_version",
            crate::plugin::expand(
                quote!(),
                quote!(
                    struct MyPlugin;
                ),
            ),
        ),
        (
            "route",
            crate::route::expand(
                quote!(GET, "/items/{id}"),
                quote!(
                    async fn item() {}
                ),
            ),
        ),
        (
            "on_event, sync",
            crate::on_event::expand(
                quote!(priority = 3),
                quote!(
                    fn on_it(plugin: &MyPlugin, event: &Happened) {}
                ),
            ),
        ),
        (
            "on_event, async",
            crate::on_event::expand(
                quote!(),
                quote!(
                    async fn on_it(event: &Happened) {}
                ),
            ),
        ),
        (
            "event",
            crate::event::expand(
                quote!(name = "my.event"),
                quote!(
                    struct Happened;
                ),
            ),
        ),
        (
            "config",
            crate::config::expand(
                quote!(),
                quote!(
                    struct Settings {
                        level: u32,
                    }
                ),
            ),
        ),
        (
            "command",
            crate::command::expand(
                quote!(
                    category = "things",
                    name = "list",
                    dangerous = true,
                    starts_plugins = true
                ),
                quote!(
                    /// Lists the things.
                    async fn list(context: CommandContext<MyPlugin>, args: ListArgs) {}
                ),
            ),
        ),
        (
            "middleware, function",
            crate::middleware::expand(
                quote!(scope = global, priority = 5),
                quote!(
                    async fn stamp(
                        context: PluginContext<MyPlugin>,
                        request: Request,
                        next: Next,
                    ) -> Response {
                    }
                ),
            ),
        ),
        (
            "middleware, layer",
            crate::middleware::expand(
                quote!(layer),
                quote!(
                    fn limits(context: PluginContext<MyPlugin>) -> Identity {}
                ),
            ),
        ),
        (
            "health_check",
            crate::health_check::expand(
                quote!(liveness),
                quote!(
                    async fn pumping(context: &PluginContext<MyPlugin>) -> Result<(), String> {}
                ),
            ),
        ),
        (
            "plugin_test, async",
            crate::plugin_test::expand(
                quote!(timeout = "5s", tags = ["smoke"], category = integration),
                quote!(
                    async fn answers(context: &TestContext<MyPlugin>) -> Result<(), String> {}
                ),
            ),
        ),
        (
            "plugin_test, sync",
            crate::plugin_test::expand(
                quote!(),
                quote!(
                    fn answers(context: &TestContext<MyPlugin>) -> Result<(), String> {}
                ),
            ),
        ),
        (
            "payload",
            crate::payload::expand(
                quote!(response),
                quote!(
                    struct Report {
                        count: u32,
                    }
                ),
            ),
        ),
        (
            "debug_handler",
            crate::debug_handler::expand(
                quote!(),
                quote!(
                    async fn item(state: PluginState<MyPlugin>, body: Json<Value>) -> Json<Value> {}
                ),
            ),
        ),
    ]
}

/// Every absolute path (`::a::b`) in `tokens` that starts with something other than
/// `::core::` or `::plexichat::__private::`.
fn foreign_absolute_paths(tokens: TokenStream, found: &mut Vec<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        if let TokenTree::Group(group) = token {
            foreign_absolute_paths(group.stream(), found);
        }
        let is_path_separator = matches!(
            (token, tokens.get(index + 1)),
            (TokenTree::Punct(a), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        );
        // `a::b` and `<T as Trait>::b` continue a path; a `::` after anything else (`name: `,
        // `(`, `=`, `<`) starts one.
        let continues = index > 0
            && match &tokens[index - 1] {
                TokenTree::Ident(_) => true,
                TokenTree::Punct(punct) => punct.as_char() == '>',
                _ => false,
            };
        if !is_path_separator || continues {
            continue;
        }
        let path: Vec<String> = tokens[index..]
            .iter()
            .take(6)
            .map(ToString::to_string)
            .collect();
        let path = path.concat();
        if !(path.starts_with("::core::") || path.starts_with("::plexichat::__private")) {
            found.push(path);
        }
    }
}

#[test]
fn expansions_name_only_core_and_the_private_module() {
    for (name, expansion) in expansions() {
        let text = expansion.to_string();
        assert!(!text.contains("compile_error"), "{name}: {text}");
        let mut found = Vec::new();
        foreign_absolute_paths(expansion, &mut found);
        assert!(found.is_empty(), "{name} names {found:?}");
    }
}

#[test]
fn the_crate_name_is_read_by_rustc_not_by_the_macro() {
    for (name, expansion) in expansions() {
        // These register nothing, so they name no crate.
        if ["event", "config", "payload", "debug_handler"].contains(&name) {
            continue;
        }
        let text = expansion.to_string().replace(' ', "");
        assert!(
            text.contains(r#"crate_name:::core::env!("CARGO_CRATE_NAME")"#),
            "{name}: {text}"
        );
    }
}
