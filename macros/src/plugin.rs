//! `#[plugin(...)]`: the crate's manifest, registered into `PLEXICHAT_PLUGINS`.
//!
//! Parse ([`Input`]: syntax only) → validate ([`Plugin`]: every value checked, or every error)
//! → expand ([`generate`]). On any error, [`fallback`] still emits the type with its `Plugin`
//! impl (and `Configurable` when `config = T` parsed), so that `PluginState<MyPlugin>`,
//! `dependencies = [MyPlugin]` and `fn handler(plugin: &MyPlugin, ...)` elsewhere stay quiet and
//! one mistake in the manifest gives one message.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::args::{self, Arg, Check, Errors};
use crate::{assets, migrations};

/// Every key `#[plugin]` accepts, in the order the seed's manifest lists them, each with the
/// step that validates its value. The one place a key is named: unknown-key messages list
/// these names, and a key cannot be accepted without being handled.
const KEYS: &[(&str, Check<Manifest>)] = &[
    ("name", |m, arg, errors| {
        m.name = errors.ok(plugin_name(arg))
    }),
    ("version", |m, arg, errors| {
        m.version = errors.ok(version(arg))
    }),
    ("description", |m, arg, errors| {
        m.description = errors.ok(args::string(arg))
    }),
    ("author", |m, arg, errors| {
        m.author = errors.ok(args::string(arg))
    }),
    ("type", |m, arg, errors| {
        m.kind = errors.ok(plugin_type(arg))
    }),
    ("dependencies", |m, arg, errors| {
        m.dependencies = errors.ok(dependencies(arg)).unwrap_or_default()
    }),
    ("permissions", |m, arg, errors| {
        m.permissions = errors.ok(args::string_list(arg)).unwrap_or_default()
    }),
    ("api_version", |m, arg, errors| {
        m.api_version = errors.ok(args::string(arg))
    }),
    ("min_plexichat_version", |m, arg, errors| {
        m.min_plexichat_version = errors.ok(version(arg))
    }),
    ("category", |m, arg, errors| {
        m.category = errors.ok(args::string(arg))
    }),
    ("tags", |m, arg, errors| {
        m.tags = errors.ok(args::string_list(arg)).unwrap_or_default()
    }),
    ("homepage", |m, arg, errors| {
        m.homepage = errors.ok(args::string(arg))
    }),
    ("repository", |m, arg, errors| {
        m.repository = errors.ok(args::string(arg))
    }),
    ("license", |m, arg, errors| {
        m.license = errors.ok(args::string(arg))
    }),
    ("icon", |m, arg, errors| {
        m.icon = errors.ok(args::string(arg))
    }),
    ("ui_pages", |m, arg, errors| {
        m.ui_pages = errors.ok(ui_pages(arg)).unwrap_or_default()
    }),
    ("docs", |m, arg, errors| {
        m.docs = errors.ok(args::string(arg))
    }),
    ("webhooks", |m, arg, errors| {
        m.webhooks = errors.ok(webhooks(arg)).unwrap_or_default()
    }),
    ("auto_start", |m, arg, errors| {
        m.auto_start = errors.ok(args::boolean(arg))
    }),
    ("prefix", |m, arg, errors| m.prefix = errors.ok(prefix(arg))),
    ("config", |m, arg, errors| m.config = errors.ok(config(arg))),
    ("lifecycle", |m, arg, errors| {
        m.lifecycle = errors.ok(args::boolean(arg))
    }),
    ("backup", |m, arg, errors| {
        m.backup = errors.ok(args::boolean(arg))
    }),
    ("migrations", |m, arg, errors| {
        m.migrations_key = Some(arg.key.clone());
        m.migrations = errors.ok(args::string(arg).and_then(|folder| {
            let files = migrations::read(&folder)?;
            Ok((folder, files))
        }))
    }),
];

use plexichat_rules::{DATABASE_PERMISSION, PLUGIN_KINDS, RESERVED_PLUGIN_NAMES};

/// The keys of one `ui_pages` entry, each with the field it fills.
const UI_PAGE_KEYS: &[(&str, Check<UiPageFields>)] = &[
    ("name", |page, arg, _| page.name = Some(args::string(arg))),
    ("path", |page, arg, _| page.path = Some(args::string(arg))),
    ("title", |page, arg, _| page.title = Some(args::string(arg))),
    ("description", |page, arg, _| {
        page.description = Some(args::string(arg))
    }),
];

/// The parse step's output: the attribute's `key = value` pairs and the annotated item, as
/// syntax; nothing is checked yet.
struct Input {
    args: syn::Result<Vec<Arg>>,
    item: syn::Result<syn::Item>,
}

/// The validate step's output: a plugin type and its checked manifest.
struct Plugin {
    ident: Ident,
    /// The doc comment's first paragraph, the default description.
    docs: Option<String>,
    manifest: Manifest,
}

/// The checked manifest; `None` means "use the default".
#[derive(Default)]
struct Manifest {
    name: Option<LitStr>,
    version: Option<LitStr>,
    description: Option<LitStr>,
    author: Option<LitStr>,
    /// The `PluginType` variant.
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
    /// The files of the pages' folders and of `ui/static/`.
    ui_files: Vec<assets::File>,
    /// The `docs` key: the docs folder, relative to the crate.
    docs: Option<LitStr>,
    /// The files of the docs folder.
    doc_files: Vec<assets::File>,
    webhooks: Vec<syn::Path>,
    auto_start: Option<bool>,
    prefix: Option<LitStr>,
    config: Option<syn::Path>,
    lifecycle: Option<bool>,
    backup: Option<bool>,
    /// The folder as written, and the files found in it.
    migrations: Option<(LitStr, Vec<migrations::MigrationFile>)>,
    /// The `migrations` key, even when its folder is wrong.
    migrations_key: Option<Ident>,
}

struct UiPage {
    name: LitStr,
    path: LitStr,
    title: LitStr,
    description: Option<LitStr>,
}

/// One `ui_pages` entry while its keys are read; `None` means the key is absent.
#[derive(Default)]
struct UiPageFields {
    name: Option<syn::Result<LitStr>>,
    path: Option<syn::Result<LitStr>>,
    title: Option<syn::Result<LitStr>>,
    description: Option<syn::Result<LitStr>>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let input = Input {
        args: args::parse_args(args),
        item: syn::parse2(item.clone()),
    };
    match validate(&input) {
        Ok(plugin) => generate(&item, &plugin),
        Err(error) => fallback(&item, &input, &error),
    }
}

fn validate(input: &Input) -> syn::Result<Plugin> {
    let declared = match &input.item {
        Ok(item) => declared_type(item),
        Err(error) => Err(error.clone()),
    };
    let manifest = match &input.args {
        Ok(args) => manifest(args),
        Err(error) => Err(error.clone()),
    };
    args::both(declared, manifest).map(|((ident, docs), manifest)| Plugin {
        ident,
        docs,
        manifest,
    })
}

/// The type that holds the plugin's state, and its doc comment.
fn declared_type(item: &syn::Item) -> syn::Result<(Ident, Option<String>)> {
    let (ident, generics, attrs) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.generics, &s.attrs),
        syn::Item::Enum(e) => (&e.ident, &e.generics, &e.attrs),
        other => {
            return Err(syn::Error::new_spanned(
                item_keyword(other),
                "`#[plugin]` must be placed on a struct or enum, the type that holds the plugin's state",
            ));
        }
    };
    if !generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            generics,
            "a `#[plugin]` type cannot be generic: the program holds exactly one instance of it",
        ));
    }
    Ok((ident.clone(), doc_comment(attrs)))
}

fn manifest(args: &[Arg]) -> syn::Result<Manifest> {
    let mut manifest = Manifest::default();
    let mut errors = Errors::default();
    args::apply(args, KEYS, "`#[plugin]`", &mut manifest, &mut errors);
    for (index, permission) in manifest.permissions.iter().enumerate() {
        if plexichat_rules::permission(&permission.value()).is_none() {
            let names: Vec<String> = plexichat_rules::PERMISSIONS
                .iter()
                .map(|known| format!("`{}`", known.name))
                .collect();
            errors.spanned(
                permission,
                match plexichat_rules::closest(
                    &permission.value(),
                    plexichat_rules::PERMISSIONS.iter().map(|known| known.name),
                ) {
                    Some(meant) => format!(
                        "unknown permission `{}`; did you mean `{meant}`? (see the plugin guide)",
                        permission.value()
                    ),
                    None => format!(
                        "unknown permission `{}`; expected one of: {} (see the plugin guide)",
                        permission.value(),
                        names.join(", ")
                    ),
                },
            );
        }
        if manifest.permissions[..index]
            .iter()
            .any(|p| p.value() == permission.value())
        {
            errors.spanned(
                permission,
                format!("permission `{}` is listed twice", permission.value()),
            );
        }
    }
    // Migrations create the tables that only the SQL pool reaches; declaring them without
    // that permission is a manifest that cannot work.
    if let Some(key) = &manifest.migrations_key
        && !manifest
            .permissions
            .iter()
            .any(|p| p.value() == DATABASE_PERMISSION)
    {
        errors.spanned(
            key,
            format!("a plugin with migrations needs the `{DATABASE_PERMISSION}` permission: add `permissions = [\"{DATABASE_PERMISSION}\"]`"),
        );
    }
    // The pages' folders were checked one by one; what they hold is read once all are.
    let root = assets::crate_root();
    let pages: Vec<&LitStr> = manifest.ui_pages.iter().map(|page| &page.path).collect();
    manifest.ui_files = errors
        .ok(assets::ui_files(&root, &pages))
        .unwrap_or_default();
    manifest.doc_files = errors
        .ok(assets::docs(&root, manifest.docs.as_ref()))
        .unwrap_or_default();
    errors.into_result(manifest)
}

/// What `#[plugin]` emits when the manifest or the item has a mistake: the item, the errors,
/// and the impls the rest of the crate relies on, so that the mistake is the only message.
fn fallback(item: &TokenStream, input: &Input, error: &syn::Error) -> TokenStream {
    let ident = match &input.item {
        Ok(syn::Item::Struct(s)) if s.generics.params.is_empty() => Some(&s.ident),
        Ok(syn::Item::Enum(e)) if e.generics.params.is_empty() => Some(&e.ident),
        _ => None,
    };
    let impls = ident.map(|ident| {
        let config = input
            .args
            .as_ref()
            .ok()
            .and_then(|args| args.iter().find(|arg| arg.key.unraw() == "config"))
            .and_then(|arg| config(arg).ok());
        let configurable = config.map(|path| configurable(ident, &path));
        let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
        // Every permission, so that no service use adds an error to the manifest's.
        let grant_all = plexichat_rules::PERMISSIONS.iter().map(|permission| {
            let marker = Ident::new(permission.marker, proc_macro2::Span::call_site());
            quote! {
                #[automatically_derived]
                impl ::plexichat::__private::perm::#marker for #ident {}
            }
        });
        // Routes of this crate check `PluginState<Q>` against the dependencies; with the
        // manifest in error those are unknown, so every use passes until it is fixed.
        quote! {
            #[automatically_derived]
            impl ::plexichat::__private::Plugin for #ident {
                const NAME: &'static ::core::primitive::str = ::core::stringify!(#ident);
            }
            #configurable
            #[automatically_derived]
            impl ::plexichat::__private::CratePlugin<#ident>
                for ::plexichat::__private::Crate<#crate_id>
            {
            }
            #[automatically_derived]
            impl ::plexichat::__private::OwnedBy<::plexichat::__private::Crate<#crate_id>>
                for #ident
            {
            }
            #[automatically_derived]
            impl ::plexichat::__private::TestedBy<::plexichat::__private::Crate<#crate_id>>
                for #ident
            {
            }
            #[automatically_derived]
            impl<Q> ::plexichat::__private::DependsOn<Q> for #ident {}
            #(#grant_all)*
        }
    });
    let errors = error.to_compile_error();
    quote! {
        #item
        #impls
        #errors
    }
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
            }) => Some(text.value()),
            _ => None,
        })
        .collect();
    plexichat_rules::first_paragraph(lines.iter().map(String::as_str))
}

/// `name = "snake_case"`, not one of the names core's routes use.
fn plugin_name(arg: &Arg) -> syn::Result<LitStr> {
    let lit = args::string(arg)?;
    let name = lit.value();
    if !is_snake_case(&name) {
        return Err(syn::Error::new_spanned(
            &lit,
            "plugin name must be snake_case: lowercase letters, digits and `_`, starting with a letter",
        ));
    }
    if RESERVED_PLUGIN_NAMES.contains(&name.as_str()) {
        return Err(syn::Error::new_spanned(
            &lit,
            format!(
                "plugin name `{name}` is reserved for core routes (`/api/v1/{name}`); choose another name (reserved: {})",
                RESERVED_PLUGIN_NAMES.join(", ")
            ),
        ));
    }
    Ok(lit)
}

/// `version = "1.2.3"`: `major.minor.patch` with an optional `-pre` or `+build` suffix.
fn version(arg: &Arg) -> syn::Result<LitStr> {
    let lit = args::string(arg)?;
    let value = lit.value();
    let core = value.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(syn::Error::new_spanned(
            &lit,
            format!("`{value}` is not a version; write `major.minor.patch`, e.g. `1.0.0`"),
        ));
    }
    Ok(lit)
}

/// `type = micro_app` (or `"micro_app"`), as the `PluginType` variant.
fn plugin_type(arg: &Arg) -> syn::Result<Ident> {
    let (text, span) = match &arg.value {
        args::Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        })) => (lit.value(), lit.span()),
        value => match args::path(value).and_then(syn::Path::get_ident) {
            Some(ident) => (ident.unraw().to_string(), ident.span()),
            None => {
                return Err(syn::Error::new_spanned(
                    value,
                    "`type` expects a plugin type name, e.g. `type = feature`",
                ));
            }
        },
    };
    if let Some(kind) = PLUGIN_KINDS.iter().find(|kind| kind.name == text) {
        return Ok(Ident::new(kind.variant, span));
    }
    let names: Vec<&str> = PLUGIN_KINDS.iter().map(|kind| kind.name).collect();
    Err(syn::Error::new(
        span,
        format!(
            "unknown plugin type `{text}`; expected one of: {}",
            names.join(", ")
        ),
    ))
}

/// `dependencies = [other_plugin::OtherPlugin, ...]`.
fn dependencies(arg: &Arg) -> syn::Result<Vec<syn::Path>> {
    args::each(arg, |element| {
        let path = args::path(element).ok_or_else(|| {
            syn::Error::new_spanned(
                element,
                "a dependency is the path of another plugin's type, e.g. `my_awesome_plugin::AwesomePlugin`",
            )
        })?;
        match crate_or_module(path) {
            Some(problem) => Err(syn::Error::new_spanned(path, problem)),
            None => Ok(path.clone()),
        }
    })
}

/// The message for a dependency written as a crate or module (`[my_awesome_plugin]`), which
/// rustc would only call "expected type, found crate". Types are `CamelCase`, so a path that
/// ends in a lowercase name almost certainly is not one. The example guesses the type the way
/// `cargo xtask new-plugin` names it (`weather` declares `Weather`).
fn crate_or_module(path: &syn::Path) -> Option<String> {
    let last = path.segments.last()?;
    let name = last.ident.unraw().to_string();
    if !name.starts_with(|first: char| first.is_ascii_lowercase()) {
        return None;
    }
    let written = quote!(#path).to_string().replace(' ', "");
    let guess = plexichat_rules::camel_case(&name);
    Some(format!(
        "`{written}` is a crate or module, not a type: name the plugin type it declares with \
         `#[plugin]`, e.g. `{written}::{guess}`"
    ))
}

/// `ui_pages = [{ name = "dashboard", path = "ui/dashboard", title = "...", description = "..." }]`,
/// written like the seed manifest's JSON objects.
fn ui_pages(arg: &Arg) -> syn::Result<Vec<UiPage>> {
    // Every entry is checked, and the valid ones for duplicates too, so that all mistakes
    // are reported at once.
    let mut errors = Errors::default();
    let pages: Vec<UiPage> = args::list(arg)?
        .into_iter()
        .filter_map(|element| errors.ok(ui_page(element)))
        .collect();
    for (index, page) in pages.iter().enumerate() {
        if pages[..index]
            .iter()
            .any(|p| p.name.value() == page.name.value())
        {
            errors.spanned(
                &page.name,
                format!(
                    "two UI pages are named `{}`; each page has its own URL `/plugins/<plugin>/<name>/`",
                    page.name.value()
                ),
            );
        }
    }
    errors.into_result(pages)
}

/// A page name is one URL segment, and `static` is the plugin's shared assets.
fn page_name(name: &LitStr) -> syn::Result<()> {
    let value = name.value();
    let segment = value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !segment {
        return Err(syn::Error::new(
            name.span(),
            format!(
                "a UI page name is one URL segment of lowercase letters, digits, `_` and `-`, e.g. `dashboard`; `{value}` is not"
            ),
        ));
    }
    if value == "static" {
        return Err(syn::Error::new(
            name.span(),
            "`static` is reserved: `/plugins/<plugin>/static/` serves the plugin's `ui/static/` folder; name the page otherwise",
        ));
    }
    Ok(())
}

fn ui_page(element: &args::Value) -> syn::Result<UiPage> {
    let args::Value::Object { fields, .. } = element else {
        return Err(syn::Error::new_spanned(
            element,
            "a UI page is `{ name = \"...\", path = \"...\", title = \"...\", description = \"...\" }`",
        ));
    };
    let mut page = UiPageFields::default();
    let mut errors = Errors::default();
    args::apply(fields, UI_PAGE_KEYS, "a UI page", &mut page, &mut errors);
    let required = |value: Option<syn::Result<LitStr>>, key: &str| {
        value.unwrap_or_else(|| {
            Err(syn::Error::new_spanned(
                element,
                format!("UI page is missing `{key}`"),
            ))
        })
    };
    let fields = args::both(
        args::both(required(page.name, "name"), required(page.path, "path")),
        args::both(required(page.title, "title"), page.description.transpose()),
    );
    let ((), ((name, path), (title, description))) = args::both(errors.into_result(()), fields)?;
    args::both(
        page_name(&name),
        assets::check_page(&assets::crate_root(), &path),
    )?;
    Ok(UiPage {
        name,
        path,
        title,
        description,
    })
}

/// `webhooks = [ActionCompleted]`: the event types (declared with `#[event]`) the plugin
/// writes to the outbox for webhooks. Types, not names, so that rustc finds an unknown one
/// at the mistake and the name has one source, the event's `#[event(name = ...)]`.
fn webhooks(arg: &Arg) -> syn::Result<Vec<syn::Path>> {
    args::each(arg, |element| {
        if let args::Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(name),
            ..
        })) = element
        {
            return Err(syn::Error::new_spanned(
                name,
                format!(
                    "`webhooks` lists event types, not names: write the type declared with \
                     `#[event(name = \"{}\")]`, e.g. `webhooks = [ActionCompleted]`",
                    name.value()
                ),
            ));
        }
        args::path(element).cloned().ok_or_else(|| {
            syn::Error::new_spanned(
                element,
                "a webhook is an event type declared with `#[event]`, e.g. `webhooks = [ActionCompleted]`",
            )
        })
    })
}

/// `prefix = "/api/v1/awesome"`.
fn prefix(arg: &Arg) -> syn::Result<LitStr> {
    let lit = args::string(arg)?;
    match prefix_problem(&lit.value()) {
        Some(problem) => Err(syn::Error::new_spanned(&lit, problem)),
        None => Ok(lit),
    }
}

/// `config = MyConfig`; the fallback uses it too, so that `PluginConfig<MyPlugin>` stays quiet
/// when another key has a mistake.
fn config(arg: &Arg) -> syn::Result<syn::Path> {
    args::path(&arg.value).cloned().ok_or_else(|| {
        syn::Error::new_spanned(
            &arg.value,
            "`config` expects the plugin's configuration type, e.g. `config = MyConfig`",
        )
    })
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

fn configurable(ident: &Ident, config: &syn::Path) -> TokenStream {
    quote! {
        #[automatically_derived]
        impl ::plexichat::__private::Configurable for #ident {
            type Config = #config;
        }
    }
}

fn generate(item: &TokenStream, plugin: &Plugin) -> TokenStream {
    let Plugin {
        ident,
        docs,
        manifest,
    } = plugin;
    let plugin_trait = quote!(::plexichat::__private::Plugin);
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
    // The default name is the crate name, known only when rustc compiles the expansion, so
    // the reserved-name check and the default prefix are const evaluation, not macro code.
    let (name, name_span) = match &manifest.name {
        Some(lit) => (quote!(#lit), lit.span()),
        None => (args::crate_name(), ident.span()),
    };
    let name_check = quote_spanned! {name_span=>
        const _: () = ::plexichat::__private::check_plugin_name(<#ident as #plugin_trait>::NAME);
    };
    let (prefix, default_prefix) = match &manifest.prefix {
        Some(lit) => (quote!(#lit), quote!()),
        None => (
            quote!(::plexichat::__private::utf8(&PREFIX)),
            quote! {
                const PREFIX_LEN: ::core::primitive::usize =
                    ::plexichat::__private::default_prefix_len(<#ident as #plugin_trait>::NAME);
                const PREFIX: [::core::primitive::u8; PREFIX_LEN] =
                    ::plexichat::__private::default_prefix(<#ident as #plugin_trait>::NAME);
            },
        ),
    };
    let version = or_env(&manifest.version, "CARGO_PKG_VERSION");
    let description = match (&manifest.description, docs) {
        (Some(lit), _) => quote!(#lit),
        (None, Some(docs)) => quote!(#docs),
        (None, None) => quote!(::core::env!("CARGO_PKG_DESCRIPTION")),
    };
    let author = or_env(&manifest.author, "CARGO_PKG_AUTHORS");
    let kind = match &manifest.kind {
        Some(variant) => quote!(#variant),
        None => quote!(Feature),
    };
    let api_version = or_text(&manifest.api_version, "1.0");
    let (min_version, min_version_check) = match &manifest.min_plexichat_version {
        Some(lit) => (
            quote!(#lit),
            quote_spanned! {lit.span()=>
                const _: () = ::plexichat::__private::check_min_version(#lit);
            },
        ),
        None => (quote!(::plexichat::__private::VERSION), quote!()),
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
    // Each listed event through an alias, so that a type that does not resolve is one error
    // (at the alias) rather than one per use.
    let hook_alias = |index: usize| {
        format_ident!(
            "__PlexichatWebhook{}Of{}",
            index,
            ident,
            span = manifest.webhooks[index].span()
        )
    };
    let webhooks = manifest.webhooks.iter().enumerate().map(|(index, path)| {
        let alias = hook_alias(index);
        quote_spanned! {path.span()=> <#alias as ::plexichat::__private::Event>::NAME }
    });
    // `P: DeclaresWebhook<E>` for each listed event, which the outbox's `write` requires.
    let mut seen_hooks = Vec::new();
    let declares_webhooks = manifest.webhooks.iter().enumerate().map(|(index, path)| {
        let alias = hook_alias(index);
        let text = quote!(#path).to_string();
        let declares = (!seen_hooks.contains(&text)).then(|| {
            quote_spanned! {path.span()=>
                #[automatically_derived]
                impl ::plexichat::__private::DeclaresWebhook<#alias> for #ident {}
            }
        });
        seen_hooks.push(text);
        quote! {
            #[doc(hidden)]
            type #alias = #path;
            #declares
        }
    });
    // One impl of a permission's marker trait per declared name (validation refused unknown
    // ones), spanned at the string.
    let grants = permissions.iter().filter_map(|permission| {
        let marker = plexichat_rules::permission(&permission.value())?.marker;
        let marker = Ident::new(marker, permission.span());
        Some(quote_spanned! {permission.span()=>
            #[automatically_derived]
            impl ::plexichat::__private::perm::#marker for #ident {}
        })
    });
    let migrations = match &manifest.migrations {
        Some((_, files)) => migrations::expand(files),
        None => quote!(&[]),
    };
    // Spanned at each path so that "not a plugin" lands on the dependency the user wrote.
    let dependencies = manifest.dependencies.iter().map(|path| {
        quote_spanned! {path.span()=> <#path as ::plexichat::__private::Plugin>::NAME }
    });
    // `P: DependsOn<Q>` for itself and each dependency, and `Crate<ID>: CratePlugin<P>`, so
    // that a route in this crate taking `PluginState<Q>` compiles only when `Q` is one of
    // them. A path written twice, or naming the plugin itself, gets one impl (two would
    // conflict); the registry reports those manifests on its own terms.
    let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
    let mut seen = vec![quote!(#ident).to_string()];
    let depends_on = manifest.dependencies.iter().filter_map(|path| {
        let text = quote!(#path).to_string();
        if seen.contains(&text) {
            return None;
        }
        seen.push(text);
        Some(quote_spanned! {path.span()=>
            #[automatically_derived]
            impl ::plexichat::__private::DependsOn<#path> for #ident {}
        })
    });
    let depends_on: Vec<TokenStream> = depends_on.collect();
    let ui_pages = manifest.ui_pages.iter().map(|page| {
        let (page_name, path, title) = (&page.name, &page.path, &page.title);
        let description = or_text(&page.description, "");
        quote! {
            ::plexichat::__private::UiPage {
                name: #page_name, path: #path, title: #title, description: #description,
            }
        }
    });
    let ui_files = assets::expand(&manifest.ui_files);
    let doc_files = assets::expand(&manifest.doc_files);
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
            configurable(ident, path),
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
    // Spanned at the type so "does not implement Backup" lands on it.
    let backup = if manifest.backup.unwrap_or(false) {
        quote_spanned! {ident.span()=>
            ::core::option::Option::Some(&<#ident as ::plexichat::__private::BackupHooksOf>::BACKUP)
        }
    } else {
        quote!(::core::option::Option::None)
    };
    let macros_version = env!("CARGO_PKG_VERSION");
    let type_name = ident.to_string();
    let crate_name = args::crate_name();
    // One `#[macro_export]` name per crate: a second `#[plugin]` in the same crate defines it
    // again, which rustc rejects at that second plugin ("the name ... is defined multiple
    // times"). No stable mechanism lets the second expansion notice the first and say so in
    // its own words, so the name is the message.
    let guard = Ident::new(
        "a_crate_may_declare_only_one_plexichat_plugin",
        ident.span(),
    );

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
                const NAME: &'static ::core::primitive::str = #name;
            }

            #[automatically_derived]
            impl ::plexichat::__private::CratePlugin<#ident>
                for ::plexichat::__private::Crate<#crate_id>
            {
            }
            #[automatically_derived]
            impl ::plexichat::__private::OwnedBy<::plexichat::__private::Crate<#crate_id>>
                for #ident
            {
            }
            #[automatically_derived]
            impl ::plexichat::__private::TestedBy<::plexichat::__private::Crate<#crate_id>>
                for #ident
            {
            }
            #[automatically_derived]
            impl ::plexichat::__private::DependsOn<#ident> for #ident {}
            #(#depends_on)*

            #(#grants)*
            #(#declares_webhooks)*
            #name_check
            #default_prefix
            #configurable

            ::plexichat::__private::register!(
                PLEXICHAT_PLUGINS,
                ::plexichat::__private::PluginDescriptor,
                ::plexichat::__private::PluginDescriptor {
                    name: <#ident as #plugin_trait>::NAME,
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
                    ui_files: #ui_files,
                    docs: #doc_files,
                    webhooks: &[#(#webhooks),*],
                    auto_start: #auto_start,
                    prefix: #prefix,
                    config: #config,
                    lifecycle: #lifecycle,
                    backup: #backup,
                    migrations: #migrations,
                    crate_name: #crate_name,
                    type_name: ::core::concat!(::core::module_path!(), "::", #type_name),
                    type_id: ::plexichat::__private::TypeId::of::<#ident>,
                    construct: #construct,
                }
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(dependency, problem)`: `None` for a path that may name a type.
    #[test]
    fn dependencies_that_name_a_crate_or_module_as_a_table() {
        let check = |dependency: &str, expect: Option<&str>| {
            let path: syn::Path = syn::parse_str(dependency).unwrap();
            assert_eq!(crate_or_module(&path).as_deref(), expect, "{dependency}");
        };
        check("AwesomePlugin", None);
        check("my_awesome_plugin::AwesomePlugin", None);
        check("crate::Weather", None);
        check(
            "my_awesome_plugin",
            Some(
                "`my_awesome_plugin` is a crate or module, not a type: name the plugin type it \
                 declares with `#[plugin]`, e.g. `my_awesome_plugin::MyAwesomePlugin`",
            ),
        );
        check(
            "crate::weather",
            Some(
                "`crate::weather` is a crate or module, not a type: name the plugin type it \
                 declares with `#[plugin]`, e.g. `crate::weather::Weather`",
            ),
        );
        check(
            "r#async",
            Some(
                "`r#async` is a crate or module, not a type: name the plugin type it declares \
                 with `#[plugin]`, e.g. `r#async::Async`",
            ),
        );
    }

    /// `(prefix, problem)`: `None` for a prefix the registry can mount.
    #[test]
    fn prefixes_as_a_table() {
        let check = |prefix: &str, expect: Option<&str>| {
            assert_eq!(prefix_problem(prefix).as_deref(), expect, "{prefix}");
        };
        check("/", None);
        check("/api/v1/awesome", None);
        check("/a-b.c_d~e", None);
        check(
            "api",
            Some("prefix must start with `/`, e.g. `/api/v1/awesome` (got `api`)"),
        );
        check("/api/", Some("prefix must not end with `/`"));
        check(
            "/api//v1",
            Some(
                "prefix segment `` is empty or has characters other than letters, digits and `-._~` (prefixes take no parameters)",
            ),
        );
        check(
            "/api/{id}",
            Some(
                "prefix segment `{id}` is empty or has characters other than letters, digits and `-._~` (prefixes take no parameters)",
            ),
        );
    }

    #[test]
    fn names_are_snake_case() {
        for good in ["a", "my_plugin", "p2p", "a_1"] {
            assert!(is_snake_case(good), "{good}");
        }
        for bad in ["", "My", "1a", "_a", "a-b", "a b", "é"] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }

    /// The validate step on `#[plugin(<args>)] <item>`: the typed plugin, or every message.
    fn validated(args: &str, item: &str) -> Result<Plugin, Vec<String>> {
        let input = Input {
            args: args::parse_args(args.parse().unwrap()),
            item: syn::parse_str(item),
        };
        validate(&input).map_err(|error| error.into_iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn validate_gives_a_typed_manifest() {
        let plugin = validated(
            r#"name = "audit", type = micro_app, tags = ["a", "b"], config = Settings,
               ui_pages = [{ name = "main", path = "tests/ui/main", title = "Main" }]"#,
            "/// Audits things.\n///\n/// More detail.\nstruct Audit;",
        )
        .unwrap();
        assert_eq!(plugin.ident, "Audit");
        assert_eq!(plugin.docs.as_deref(), Some("Audits things."));
        let manifest = plugin.manifest;
        assert_eq!(
            manifest.name.map(|name| name.value()).as_deref(),
            Some("audit")
        );
        assert_eq!(manifest.kind.unwrap(), "MicroApp");
        let tags: Vec<String> = manifest.tags.iter().map(LitStr::value).collect();
        assert_eq!(tags, ["a", "b"]);
        assert!(manifest.config.unwrap().is_ident("Settings"));
        assert_eq!(manifest.ui_pages[0].title.value(), "Main");
        assert!(manifest.ui_pages[0].description.is_none());
        let embedded: Vec<&str> = manifest.ui_files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(embedded, ["tests/ui/main/index.html"]);
    }

    #[test]
    fn validate_reports_every_mistake_once() {
        let Err(messages) = validated(
            r#"name = "admin", colour = "blue", auto_start = "yes", tags = ["ok", 1],
               ui_pages = [{ name = "main", title = 2 }], auto_start = true"#,
            "fn not_a_type() {}",
        ) else {
            panic!("mistakes were accepted");
        };
        assert_eq!(
            messages,
            [
                "`#[plugin]` must be placed on a struct or enum, the type that holds the plugin's state",
                "plugin name `admin` is reserved for core routes (`/api/v1/admin`); choose another name (reserved: admin, plugins, system, performance, backup)",
                "unknown key `colour` in `#[plugin]`; expected one of: name, version, description, author, type, dependencies, permissions, api_version, min_plexichat_version, category, tags, homepage, repository, license, icon, ui_pages, docs, webhooks, auto_start, prefix, config, lifecycle, backup, migrations",
                "`auto_start` expects `true` or `false`",
                "`tags` expects a list of string literals, e.g. `tags = [\"...\"]`",
                "UI page is missing `path`",
                "`title` expects a string literal, e.g. `title = \"...\"`",
                "duplicate key `auto_start`",
            ]
        );
    }

    /// The trait impls in an expansion, as `Trait for Type`.
    fn impls(expansion: TokenStream) -> Vec<String> {
        let file: syn::File = syn::parse2(expansion).unwrap();
        file.items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Impl(syn::ItemImpl {
                    trait_: Some((_, path, _)),
                    self_ty,
                    ..
                }) => Some(format!(
                    "{} for {}",
                    path.segments.last().unwrap().ident,
                    match &**self_ty {
                        syn::Type::Path(ty) => ty.path.segments.last().unwrap().ident.to_string(),
                        other => quote!(#other).to_string(),
                    }
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_default_name_is_checked_in_const_evaluation() {
        let expansion = expand(
            quote!(),
            quote!(
                struct MyPlugin;
            ),
        )
        .to_string();
        let expansion = expansion.replace(' ', "");
        for expected in [
            r#"constNAME:&'static::core::primitive::str=::core::env!("CARGO_CRATE_NAME");"#,
            "const_:()=::plexichat::__private::check_plugin_name(<MyPluginas::plexichat::__private::Plugin>::NAME);",
        ] {
            assert!(
                expansion.contains(expected),
                "{expected} not in {expansion}"
            );
        }
    }

    #[test]
    fn a_mistake_still_gives_the_type_its_impls() {
        let item = quote!(
            struct MyPlugin;
        );
        let with_config = expand(quote!(autor = "me", config = Settings), item.clone());
        // `CratePlugin`, `OwnedBy`, an any-plugin `DependsOn` and every permission keep the
        // crate's routes and services quiet too.
        let every_permission: Vec<String> = plexichat_rules::PERMISSIONS
            .iter()
            .map(|permission| format!("{} for MyPlugin", permission.marker))
            .collect();
        let with = |first: &[&str]| -> Vec<String> {
            let mut all: Vec<String> = first.iter().map(ToString::to_string).collect();
            all.extend(every_permission.iter().cloned());
            all
        };
        assert_eq!(
            impls(with_config),
            with(&[
                "Plugin for MyPlugin",
                "Configurable for MyPlugin",
                "CratePlugin for Crate",
                "OwnedBy for MyPlugin",
                "TestedBy for MyPlugin",
                "DependsOn for MyPlugin"
            ])
        );
        let bad_config = expand(quote!(config = "Settings"), item);
        assert_eq!(
            impls(bad_config),
            with(&[
                "Plugin for MyPlugin",
                "CratePlugin for Crate",
                "OwnedBy for MyPlugin",
                "TestedBy for MyPlugin",
                "DependsOn for MyPlugin"
            ])
        );
        let generic = expand(
            quote!(autor = "me"),
            quote!(
                struct MyPlugin<T>(T);
            ),
        );
        assert_eq!(impls(generic), Vec::<String>::new());
    }
}
