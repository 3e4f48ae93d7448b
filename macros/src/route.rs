//! `#[route(METHOD, "/path")]`: an axum handler registered into `PLEXICHAT_ROUTES`.
//!
//! Parse ([`RouteArgs`] and the function) → validate ([`Route`]) → expand ([`generate`]).
//! Nothing else names a route, so on error the function is emitted unchanged with the errors.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Token};

use crate::args;

use plexichat_rules::METHODS;

/// The attribute's syntax: `METHOD, "/path"`.
struct RouteArgs {
    method: Ident,
    path: LitStr,
}

impl Parse for RouteArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        const SHAPE: &str =
            "expected `#[route(METHOD, \"/path\")]`, e.g. `#[route(GET, \"/status\")]`";
        if input.is_empty() {
            return Err(input.error(SHAPE));
        }
        let method: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        input
            .parse::<Token![,]>()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        let path: LitStr = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), SHAPE))?;
        input.parse::<Option<Token![,]>>()?;
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the route path"));
        }
        Ok(RouteArgs { method, path })
    }
}

/// The validate step's output: a handler with a known method and a well-formed path.
struct Route {
    /// The `Method` variant.
    method: Ident,
    path: LitStr,
    function: syn::ItemFn,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[route]` must be placed on an `async fn` handler")
    });
    match validate(syn::parse2(args), function) {
        Ok(route) => generate(&item, &route),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(
    route: syn::Result<RouteArgs>,
    function: syn::Result<syn::ItemFn>,
) -> syn::Result<Route> {
    let target = route.and_then(|RouteArgs { method: name, path }| {
        let checked_path = match path_problem(&path.value()) {
            Some(problem) => Err(syn::Error::new_spanned(&path, problem)),
            None => Ok(path),
        };
        args::both(method(&name), checked_path)
    });
    let function = function.and_then(|function| {
        check_signature(&function.sig)?;
        Ok(function)
    });
    args::both(target, function).map(|((method, path), function)| Route {
        method,
        path,
        function,
    })
}

fn generate(item: &TokenStream, route: &Route) -> TokenStream {
    let Route {
        method: variant,
        path,
        function,
    } = route;
    let ident = &function.sig.ident;
    let handler_name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();
    // Spanned at the function name so that axum's "not a handler" diagnostic points there.
    let make = quote_spanned! {ident.span()=>
        ::plexichat::__private::method_router(::plexichat::__private::Method::#variant, #ident)
    };
    let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
    // One check per other plugin the handler reaches into: it must be a declared dependency,
    // else it may be stopped (503 at best) while this plugin serves. Spanned at the type the
    // user wrote, where the error belongs.
    let dependency_checks = plugin_arguments(&function.sig, &["PluginState", "PluginConfig"])
        .into_iter()
        .map(|used| {
            quote_spanned! {used.span()=>
                const _: () = ::plexichat::__private::may_use::<#crate_id, #used, _>();
            }
        });
    // A context is its own plugin's only: its services reach that plugin's data.
    let ownership_checks = plugin_arguments(&function.sig, &["PluginContext"])
        .into_iter()
        .map(|used| {
            quote_spanned! {used.span()=>
                const _: () = ::plexichat::__private::owns::<#crate_id, #used>();
            }
        });
    let doc = crate::command::docs(&function.attrs).1;
    let describe_inputs = args::argument_types(&function.sig).map(|ty| {
        quote_spanned! {ty.span()=>
            (&&::plexichat::__private::Probe::<#ty>::new()).input(describer);
        }
    });
    // `impl Trait` cannot be named outside the function: such a handler's responses are
    // described as undescribed.
    let describe_output = match &function.sig.output {
        syn::ReturnType::Type(_, ty) if !names_impl_trait(ty) => quote_spanned! {ty.span()=>
            (&&::plexichat::__private::Probe::<#ty>::new()).output(describer);
        },
        syn::ReturnType::Type(..) => quote! {
            (&::plexichat::__private::Probe::<::plexichat::__private::Undescribed>::new())
                .output(describer);
        },
        syn::ReturnType::Default => quote! {
            (&&::plexichat::__private::Probe::<()>::new()).output(describer);
        },
    };
    quote! {
        #item

        const _: () = {
            #(#dependency_checks)*
            #(#ownership_checks)*

            fn make() -> ::plexichat::__private::MethodRouter {
                #make
            }

            // The double borrow selects the documenting impl when there is one.
            #[allow(clippy::needless_borrow)]
            fn describe(describer: &mut ::plexichat::__private::Describer) {
                #[allow(unused_imports)]
                use ::plexichat::__private::{
                    ProbeInput as _, ProbeInputFallback as _, ProbeOutput as _,
                    ProbeOutputFallback as _,
                };
                #(#describe_inputs)*
                #describe_output
            }

            ::plexichat::__private::register!(
                PLEXICHAT_ROUTES,
                ::plexichat::__private::RouteDescriptor,
                ::plexichat::__private::RouteDescriptor {
                    method: ::plexichat::__private::Method::#variant,
                    path: #path,
                    handler: #handler_name,
                    crate_name: #crate_name,
                    location: #location,
                    make,
                    doc: #doc,
                    describe,
                }
            );
        };
    }
}

/// Whether `ty` contains `impl Trait`, which only the function itself may name.
fn names_impl_trait(ty: &syn::Type) -> bool {
    fn has_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => has_impl(group.stream()),
            _ => false,
        })
    }
    has_impl(quote!(#ty))
}

/// The plugin types named by the handler's arguments whose type is one of `wrappers`
/// (`PluginState<P>`, `PluginConfig<P>`, `PluginContext<P>`).
///
/// Matched by the last path segment, as written, since a macro sees no types: a type alias
/// hides an argument from the check (the plugin guide says so), and an unrelated type of the
/// author's own called `PluginState` would be checked too.
/// For a `PluginContext<P>` written as `ty`, the check that `P` is this crate's plugin: a
/// context is its own plugin's only (as in `#[route]`); matched by name, as written.
pub(crate) fn context_ownership(ty: &syn::Type) -> Option<TokenStream> {
    let sig: syn::Signature = syn::parse_quote!(fn f(context: #ty));
    plugin_arguments(&sig, &["PluginContext"])
        .first()
        .map(|owner| {
            let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
            quote_spanned! {owner.span()=>
                const _: () = ::plexichat::__private::owns::<#crate_id, #owner>();
            }
        })
}

pub(crate) fn plugin_arguments<'a>(
    sig: &'a syn::Signature,
    wrappers: &[&str],
) -> Vec<&'a syn::Type> {
    args::argument_types(sig)
        .filter_map(|ty| {
            wrappers
                .iter()
                .find_map(|wrapper| args::wrapped_type(ty, wrapper))
        })
        .collect()
}

fn method(method: &Ident) -> syn::Result<Ident> {
    let text = method.to_string();
    if let Some(row) = METHODS.iter().find(|row| row.name == text) {
        return Ok(Ident::new(row.variant, method.span()));
    }
    let names: Vec<&str> = METHODS.iter().map(|row| row.name).collect();
    let hint = METHODS
        .iter()
        .find(|row| row.name.eq_ignore_ascii_case(&text))
        .map(|row| format!(" (methods are upper case: `{}`)", row.name))
        .unwrap_or_default();
    Err(syn::Error::new_spanned(
        method,
        format!(
            "unknown HTTP method `{text}`{hint}; expected one of: {}",
            names.join(", ")
        ),
    ))
}

fn check_signature(sig: &syn::Signature) -> syn::Result<()> {
    let mut errors = args::Errors::default();
    if sig.asyncness.is_none() {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        errors.spanned(
            quote!(#fn_token #ident),
            "a `#[route]` handler must be an `async fn`",
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a `#[route]` handler cannot be generic");
    }
    if let Some(receiver) = sig.receiver() {
        errors.spanned(
            receiver,
            "a `#[route]` handler is a free function; take the plugin's state as `PluginState<MyPlugin>`",
        );
    }
    errors.into_result(())
}

/// Checks a route path against axum's syntax, so a bad path fails the build instead of
/// panicking in the router at start-up.
fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!("route path must start with `/` (got `{path}`)"));
    }
    if path == "/" {
        return None;
    }
    if path.ends_with('/') {
        return Some(format!(
            "route path must not end with `/` (got `{path}`; use `{}`)",
            path.trim_end_matches('/')
        ));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut names = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return Some(format!("route path `{path}` has an empty segment (`//`)"));
        }
        if let Some(name) = segment.strip_prefix(':') {
            return Some(format!(
                "`:{name}` is not a path parameter here; write `{{{name}}}`"
            ));
        }
        if let Some(inner) = segment.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Some(format!(
                    "path segment `{segment}` must be a whole parameter `{{name}}` or plain text"
                ));
            };
            let (wildcard, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if wildcard && index + 1 != segments.len() {
                return Some(format!(
                    "wildcard `{{*{name}}}` must be the last segment of the path"
                ));
            }
            if syn::parse_str::<Ident>(name).is_err() {
                return Some(format!(
                    "path parameter `{{{inner}}}` must be named with an identifier"
                ));
            }
            if names.contains(&name) {
                return Some(format!("path parameter `{name}` appears twice"));
            }
            names.push(name);
            continue;
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Some(format!(
                "route path `{path}` has `{bad}`; use letters, digits, `-._~` and `{{param}}` segments"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(path, problem)`: `None` for a path axum accepts as written.
    #[test]
    fn route_paths_as_a_table() {
        let check = |path: &str, expect: Option<&str>| {
            assert_eq!(path_problem(path).as_deref(), expect, "{path}");
        };
        check("/", None);
        check("/status", None);
        check("/items/{id}", None);
        check("/files/{*rest}", None);
        check("/a-b.c_d~e/{x}/{y}", None);
        check(
            "status",
            Some("route path must start with `/` (got `status`)"),
        );
        check(
            "/status/",
            Some("route path must not end with `/` (got `/status/`; use `/status`)"),
        );
        check(
            "/a//b",
            Some("route path `/a//b` has an empty segment (`//`)"),
        );
        check(
            "/items/:id",
            Some("`:id` is not a path parameter here; write `{id}`"),
        );
        check(
            "/items/x{id}",
            Some(
                "route path `/items/x{id}` has `{`; use letters, digits, `-._~` and `{param}` segments",
            ),
        );
        check(
            "/items/{id",
            Some("path segment `{id` must be a whole parameter `{name}` or plain text"),
        );
        check(
            "/{*rest}/more",
            Some("wildcard `{*rest}` must be the last segment of the path"),
        );
        check(
            "/{1x}",
            Some("path parameter `{1x}` must be named with an identifier"),
        );
        check("/{id}/{id}", Some("path parameter `id` appears twice"));
        check(
            "/a b",
            Some("route path `/a b` has ` `; use letters, digits, `-._~` and `{param}` segments"),
        );
    }
}
