//! `#[plugin(...)]`: the crate's manifest, registered into `PLEXICHAT_PLUGINS`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::args::{self, Errors};

/// Keys `#[plugin]` accepts, in the order the seed's manifest lists them.
const KEYS: &[&str] = &[
    "name",
    "version",
    "description",
    "author",
    "type",
    "dependencies",
    "permissions",
    "api_version",
    "min_plexichat_version",
    "category",
    "tags",
    "homepage",
    "repository",
    "license",
    "icon",
    "ui_pages",
    "webhooks",
    "auto_start",
    "prefix",
    "config",
    "lifecycle",
];

/// The sixteen manifest types; `PluginType` in core has the same variants in the same order.
const TYPES: &[(&str, &str)] = &[
    ("core", "Core"),
    ("feature", "Feature"),
    ("integration", "Integration"),
    ("micro_app", "MicroApp"),
    ("ai_node", "AiNode"),
    ("security_node", "SecurityNode"),
    ("storage_node", "StorageNode"),
    ("extension", "Extension"),
    ("theme", "Theme"),
    ("auth_provider", "AuthProvider"),
    ("notification", "Notification"),
    ("analytics", "Analytics"),
    ("backup", "Backup"),
    ("monitoring", "Monitoring"),
    ("automation", "Automation"),
    ("custom", "Custom"),
];

const UI_PAGE_KEYS: &[&str] = &["name", "path", "title", "description"];

/// The validated arguments; `None` means "use the default".
#[derive(Default)]
struct Manifest {
    name: Option<LitStr>,
    version: Option<LitStr>,
    description: Option<LitStr>,
    author: Option<LitStr>,
    kind: Option<Ident>,
    dependencies: Vec<syn::Path>,
    permissions: Vec<LitStr>,
    api_version: Option<LitStr>,
    min_plexichat_version: Option<LitStr>,
    category: Option<LitStr>,
    tags: Vec<LitStr>,
    homepage: Option<LitStr>,
    repository: Option<LitStr>,
    license: Option<LitStr>,
    icon: Option<LitStr>,
    ui_pages: Vec<UiPage>,
    webhooks: Vec<LitStr>,
    auto_start: Option<bool>,
    prefix: Option<LitStr>,
    config: Option<syn::Path>,
    lifecycle: Option<bool>,
}

struct UiPage {
    name: LitStr,
    path: LitStr,
    title: LitStr,
    description: Option<LitStr>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let parsed_item = syn::parse2::<syn::Item>(item.clone());
    let (ident, docs) = match &parsed_item {
        Ok(syn::Item::Struct(s)) => check_type(&s.ident, &s.generics, &s.attrs, &mut errors),
        Ok(syn::Item::Enum(e)) => check_type(&e.ident, &e.generics, &e.attrs, &mut errors),
        Ok(other) => {
            errors.spanned(
                item_keyword(other),
                "`#[plugin]` must be placed on a struct or enum, the type that holds the plugin's state",
            );
            (None, None)
        }
        Err(error) => {
            errors.push(error.clone());
            (None, None)
        }
    };
    let manifest = match args::parse_args(args) {
        Ok(parsed) => validate(parsed, &mut errors),
        Err(error) => {
            errors.push(error);
            Manifest::default()
        }
    };
    let crate_name = args::crate_name(&mut errors);
    if let Some(output) = errors.finish(&item) {
        return output;
    }
    let ident = ident.expect("no errors means the item is a named type");
    generate(&item, &ident, docs, manifest, &crate_name)
}

/// The tokens that name an item (`fn name`, `trait Name`), so the error underlines them and
/// not the whole body.
fn item_keyword(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Fn(f) => {
            let (fn_token, ident) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#fn_token #ident)
        }
        syn::Item::Union(u) => {
            let (token, ident) = (&u.union_token, &u.ident);
            quote!(#token #ident)
        }
        syn::Item::Trait(t) => {
            let (token, ident) = (&t.trait_token, &t.ident);
            quote!(#token #ident)
        }
        other => {
            let span = other.span();
            quote_spanned!(span=> item)
        }
    }
}

fn check_type(
    ident: &Ident,
    generics: &syn::Generics,
    attrs: &[syn::Attribute],
    errors: &mut Errors,
) -> (Option<Ident>, Option<String>) {
    if !generics.params.is_empty() {
        errors.spanned(
            generics,
            "a `#[plugin]` type cannot be generic: the program holds exactly one instance of it",
        );
    }
    (Some(ident.clone()), doc_comment(attrs))
}

/// Joins `///` lines into one paragraph, the default description.
fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value().trim().to_string()),
            _ => None,
        })
        .collect();
    let paragraph: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .take_while(|line| !line.is_empty())
        .collect();
    (!paragraph.is_empty()).then(|| paragraph.join(" "))
}

fn validate(parsed: Vec<args::Arg>, errors: &mut Errors) -> Manifest {
    let mut manifest = Manifest::default();
    let mut seen = Vec::new();
    for args::Arg { key, value, .. } in parsed {
        let name = key.unraw().to_string();
        if !KEYS.contains(&name.as_str()) {
            errors.spanned(
                &key,
                format!(
                    "unknown key `{name}` in `#[plugin]`; expected one of: {}",
                    KEYS.join(", ")
                ),
            );
            continue;
        }
        if !args::first_time(&mut seen, &key, errors) {
            continue;
        }
        let text = |errors: &mut Errors| args::string(&value, &key, errors);
        match name.as_str() {
            "name" => {
                manifest.name = text(errors).filter(|lit| {
                    let ok = is_snake_case(&lit.value());
                    if !ok {
                        errors.spanned(
                            lit,
                            "plugin name must be snake_case: lowercase letters, digits and `_`, starting with a letter",
                        );
                    }
                    ok
                })
            }
            "version" => manifest.version = text(errors).filter(|lit| semver(lit, errors)),
            "description" => manifest.description = text(errors),
            "author" => manifest.author = text(errors),
            "type" => manifest.kind = plugin_type(&value, errors),
            "dependencies" => {
                for element in args::list(&value, &key, errors).unwrap_or_default() {
                    match element {
                        args::Value::Expr(syn::Expr::Path(path)) if path.qself.is_none() => {
                            manifest.dependencies.push(path.path.clone())
                        }
                        other => errors.spanned(
                            other,
                            "a dependency is the path of another plugin's type, e.g. `my_awesome_plugin::AwesomePlugin`",
                        ),
                    }
                }
            }
            "permissions" => {
                manifest.permissions = args::string_list(&value, &key, errors).unwrap_or_default()
            }
            "api_version" => manifest.api_version = text(errors),
            "min_plexichat_version" => {
                manifest.min_plexichat_version = text(errors).filter(|lit| semver(lit, errors))
            }
            "category" => manifest.category = text(errors),
            "tags" => manifest.tags = args::string_list(&value, &key, errors).unwrap_or_default(),
            "homepage" => manifest.homepage = text(errors),
            "repository" => manifest.repository = text(errors),
            "license" => manifest.license = text(errors),
            "icon" => manifest.icon = text(errors),
            "ui_pages" => {
                for element in args::list(&value, &key, errors).unwrap_or_default() {
                    if let Some(page) = ui_page(element, errors) {
                        manifest.ui_pages.push(page);
                    }
                }
            }
            "webhooks" => {
                let hooks = args::string_list(&value, &key, errors).unwrap_or_default();
                for hook in &hooks {
                    if !args::is_dotted_name(&hook.value()) {
                        errors.spanned(
                            hook,
                            "a webhook is a dotted lowercase event name, e.g. `awesome.action.completed`",
                        );
                    }
                }
                manifest.webhooks = hooks;
            }
            "auto_start" => manifest.auto_start = args::boolean(&value, &key, errors),
            "prefix" => {
                manifest.prefix = text(errors).filter(|lit| {
                    let problem = prefix_problem(&lit.value());
                    if let Some(problem) = &problem {
                        errors.spanned(lit, problem);
                    }
                    problem.is_none()
                })
            }
            "config" => match &value {
                args::Value::Expr(syn::Expr::Path(path)) if path.qself.is_none() => {
                    manifest.config = Some(path.path.clone())
                }
                other => errors.spanned(
                    other,
                    "`config` expects the plugin's configuration type, e.g. `config = MyConfig`",
                ),
            },
            "lifecycle" => manifest.lifecycle = args::boolean(&value, &key, errors),
            _ => unreachable!("every key in KEYS is handled"),
        }
    }
    manifest
}

fn plugin_type(value: &args::Value, errors: &mut Errors) -> Option<Ident> {
    let (text, span) = match value {
        args::Value::Expr(syn::Expr::Path(path)) if path.path.get_ident().is_some() => {
            let ident = path.path.get_ident().expect("checked");
            (ident.unraw().to_string(), ident.span())
        }
        args::Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        })) => (lit.value(), lit.span()),
        other => {
            errors.spanned(
                other,
                "`type` expects a plugin type name, e.g. `type = feature`",
            );
            return None;
        }
    };
    match TYPES.iter().find(|(name, _)| *name == text) {
        Some((_, variant)) => Some(Ident::new(variant, span)),
        None => {
            let names: Vec<&str> = TYPES.iter().map(|(name, _)| *name).collect();
            errors.at(
                span,
                format!(
                    "unknown plugin type `{text}`; expected one of: {}",
                    names.join(", ")
                ),
            );
            None
        }
    }
}

/// `{ name = "dashboard", path = "ui/dashboard", title = "...", description = "..." }`,
/// written like the seed manifest's JSON object.
fn ui_page(element: &args::Value, errors: &mut Errors) -> Option<UiPage> {
    let args::Value::Object { fields, .. } = element else {
        errors.spanned(
            element,
            "a UI page is `{ name = \"...\", path = \"...\", title = \"...\", description = \"...\" }`",
        );
        return None;
    };
    let (mut name, mut path, mut title, mut description) = (None, None, None, None);
    let mut seen = Vec::new();
    for field in fields {
        let key_name = field.key.unraw().to_string();
        if !UI_PAGE_KEYS.contains(&key_name.as_str()) {
            errors.spanned(
                &field.key,
                format!(
                    "unknown UI page key `{key_name}`; expected one of: {}",
                    UI_PAGE_KEYS.join(", ")
                ),
            );
            continue;
        }
        if !args::first_time(&mut seen, &field.key, errors) {
            continue;
        }
        let value = args::string(&field.value, &field.key, errors);
        match key_name.as_str() {
            "name" => name = value,
            "path" => path = value,
            "title" => title = value,
            _ => description = value,
        }
    }
    for required in ["name", "path", "title"] {
        if !seen.iter().any(|key| key == required) {
            errors.spanned(element, format!("UI page is missing `{required}`"));
        }
    }
    Some(UiPage {
        name: name?,
        path: path?,
        title: title?,
        description,
    })
}

/// Accepts `major.minor.patch` with an optional `-pre` or `+build` suffix.
fn semver(lit: &LitStr, errors: &mut Errors) -> bool {
    let value = lit.value();
    let core = value.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        errors.spanned(
            lit,
            format!("`{value}` is not a version; write `major.minor.patch`, e.g. `1.0.0`"),
        );
    }
    ok
}

fn is_snake_case(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn prefix_problem(prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') {
        return Some(format!(
            "prefix must start with `/`, e.g. `/api/v1/awesome` (got `{prefix}`)"
        ));
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        return Some("prefix must not end with `/`".to_string());
    }
    prefix
        .split('/')
        .skip(1)
        .find(|segment| {
            segment.is_empty()
                || !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
        .filter(|_| prefix != "/")
        .map(|segment| {
            format!(
                "prefix segment `{segment}` is empty or has characters other than letters, digits and `-._~` (prefixes take no parameters)"
            )
        })
}

fn generate(
    item: &TokenStream,
    ident: &Ident,
    docs: Option<String>,
    manifest: Manifest,
    crate_name: &str,
) -> TokenStream {
    let name = manifest
        .name
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| crate_name.to_string());
    let prefix = manifest
        .prefix
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| format!("/api/v1/{}", name.replace('_', "-")));
    let or_env = |value: &Option<LitStr>, var: &str| match value {
        Some(lit) => quote!(#lit),
        None => quote!(::core::env!(#var)),
    };
    let or_text = |value: &Option<LitStr>, default: &str| match value {
        Some(lit) => quote!(#lit),
        None => quote!(#default),
    };
    let optional = |value: &Option<LitStr>, var: &str| match value {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::plexichat::__private::non_empty(::core::env!(#var))),
    };
    let version = or_env(&manifest.version, "CARGO_PKG_VERSION");
    let description = match (&manifest.description, docs) {
        (Some(lit), _) => quote!(#lit),
        (None, Some(docs)) => quote!(#docs),
        (None, None) => quote!(::core::env!("CARGO_PKG_DESCRIPTION")),
    };
    let author = or_env(&manifest.author, "CARGO_PKG_AUTHORS");
    let kind = manifest
        .kind
        .unwrap_or_else(|| Ident::new("Feature", Span::call_site()));
    let api_version = or_text(&manifest.api_version, "1.0");
    let (min_version, min_version_check) = match &manifest.min_plexichat_version {
        Some(lit) => (
            quote!(#lit),
            quote_spanned! {lit.span()=>
                const _: () = ::plexichat::__private::check_min_version(#lit);
            },
        ),
        None => (quote!(::plexichat::VERSION), quote!()),
    };
    let category = or_text(&manifest.category, "general");
    let homepage = optional(&manifest.homepage, "CARGO_PKG_HOMEPAGE");
    let repository = optional(&manifest.repository, "CARGO_PKG_REPOSITORY");
    let license = optional(&manifest.license, "CARGO_PKG_LICENSE");
    let icon = match &manifest.icon {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let auto_start = manifest.auto_start.unwrap_or(true);
    let permissions = &manifest.permissions;
    let tags = &manifest.tags;
    let webhooks = &manifest.webhooks;
    // Spanned at each path so that "not a plugin" lands on the dependency the user wrote.
    let dependencies = manifest.dependencies.iter().map(|path| {
        quote_spanned! {path.span()=> <#path as ::plexichat::__private::Plugin>::NAME }
    });
    let ui_pages = manifest.ui_pages.iter().map(|page| {
        let (page_name, path, title) = (&page.name, &page.path, &page.title);
        let description = or_text(&page.description, "");
        quote! {
            ::plexichat::__private::UiPage {
                name: #page_name, path: #path, title: #title, description: #description,
            }
        }
    });
    let construct = quote_spanned! {ident.span()=> ::plexichat::__private::construct::<#ident> };
    // Spanned at the type the user named, so a missing `Deserialize` or `JsonSchema` is
    // reported on it.
    let (config, configurable) = match &manifest.config {
        Some(path) => (
            quote_spanned! {path.span()=>
                ::core::option::Option::Some(&::plexichat::__private::ConfigSpec {
                    type_name: ::core::stringify!(#path),
                    schema: ::plexichat::__private::schema_of::<#path>,
                    defaults: ::plexichat::__private::defaults_of::<#path>,
                    parse: ::plexichat::__private::parse_as::<#path>,
                })
            },
            quote! {
                #[automatically_derived]
                impl ::plexichat::__private::Configurable for #ident {
                    type Config = #path;
                }
            },
        ),
        None => (quote!(::core::option::Option::None), quote!()),
    };
    // Spanned at the type so "does not implement Lifecycle" lands on it.
    let lifecycle = if manifest.lifecycle.unwrap_or(false) {
        quote_spanned! {ident.span()=>
            ::core::option::Option::Some(&<#ident as ::plexichat::__private::HooksOf>::HOOKS)
        }
    } else {
        quote!(::core::option::Option::None)
    };
    let macros_version = env!("CARGO_PKG_VERSION");
    let type_name = ident.to_string();
    // One `#[macro_export]` name per crate: a second `#[plugin]` in the same crate defines it
    // again, which rustc rejects at that second type ("defined multiple times").
    let guard = Ident::new("only_one_plexichat_plugin_per_crate", ident.span());

    quote! {
        #item

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #guard { () => {}; }

        const _: () = {
            const _: () = ::plexichat::__private::check_macros_version(#macros_version);
            #min_version_check

            #[automatically_derived]
            impl ::plexichat::__private::Plugin for #ident {
                const NAME: &'static str = #name;
            }

            #configurable

            ::plexichat::__private::register!(
                PLEXICHAT_PLUGINS,
                ::plexichat::__private::PluginDescriptor,
                ::plexichat::__private::PluginDescriptor {
                    name: #name,
                    version: #version,
                    description: #description,
                    author: #author,
                    kind: ::plexichat::__private::PluginType::#kind,
                    dependencies: &[#(#dependencies),*],
                    permissions: &[#(#permissions),*],
                    api_version: #api_version,
                    min_plexichat_version: #min_version,
                    category: #category,
                    tags: &[#(#tags),*],
                    homepage: #homepage,
                    repository: #repository,
                    license: #license,
                    icon: #icon,
                    ui_pages: &[#(#ui_pages),*],
                    webhooks: &[#(#webhooks),*],
                    auto_start: #auto_start,
                    prefix: #prefix,
                    config: #config,
                    lifecycle: #lifecycle,
                    crate_name: #crate_name,
                    type_name: ::core::concat!(::core::module_path!(), "::", #type_name),
                    type_id: ::plexichat::__private::TypeId::of::<#ident>,
                    construct: #construct,
                }
            );
        };
    }
}
