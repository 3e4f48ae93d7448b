//! `#[middleware]`: an async function around requests, or with `layer` a function returning a
//! tower layer, registered into `PLEXICHAT_MIDDLEWARE`.
//!
//! Parse (arguments and the function) → validate ([`Middleware`]) → expand ([`generate`]).
//! Nothing else names a middleware, so on error the function is emitted unchanged with the
//! errors.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, Arg, Check, Errors};

const SIGNATURE: &str = "a middleware is `async fn(request: Request, next: Next) -> impl IntoResponse`, optionally taking its plugin's `context: PluginContext<MyPlugin>` first";

const LAYER_SIGNATURE: &str = "`fn() -> SomeLayer` (a named tower layer type, not `impl Layer`), optionally taking its plugin's `context: PluginContext<MyPlugin>`; it is called once, when the application is built";

/// What the keys of `#[middleware]` set.
struct Keys {
    scope: syn::Ident,
    priority: i32,
    /// The function returns a tower layer instead of being called per request.
    layer: bool,
}

/// The keys `#[middleware]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("scope", |keys, arg, errors| {
        if let Some(scope) = errors.ok(scope(arg)) {
            keys.scope = scope;
        }
    }),
    ("priority", |keys, arg, errors| {
        if let Some(value) = errors.ok(crate::on_event::priority(arg)) {
            keys.priority = value;
        }
    }),
    ("layer", |keys, arg, errors| {
        if let Some(value) = errors.ok(args::boolean(arg)) {
            keys.layer = value;
        }
    }),
];

/// The validate step's output.
struct Middleware {
    function: syn::ItemFn,
    keys: Keys,
    /// The type of the context argument, when it takes one.
    context: Option<syn::Type>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[middleware]` must be placed on an async function")
    });
    match validate(args::parse_args(args), function) {
        Ok(middleware) => generate(&item, &middleware),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(
    args: syn::Result<Vec<Arg>>,
    function: syn::Result<syn::ItemFn>,
) -> syn::Result<Middleware> {
    // Which signature to check depends on `layer`, read from the arguments even when
    // another key is wrong, so that the function's own mistakes are reported with the keys'.
    let layer = args.as_ref().is_ok_and(|args| {
        args.iter()
            .any(|arg| arg.key == "layer" && args::boolean(arg).unwrap_or(false))
    });
    let keys = args.and_then(|args| {
        let mut keys = Keys {
            scope: format_ident!("PluginRoutes"),
            priority: 0,
            layer: false,
        };
        let mut errors = Errors::default();
        args::apply(&args, KEYS, "`#[middleware]`", &mut keys, &mut errors);
        errors.into_result(keys)
    });
    let function = function.and_then(|function| {
        let context = if layer {
            layer_signature(&function.sig)?
        } else {
            signature(&function.sig)?
        };
        Ok((function, context))
    });
    args::both(keys, function).map(|(keys, (function, context))| Middleware {
        function,
        keys,
        context,
    })
}

/// `scope = global` or `scope = plugin`, as the variant of `MiddlewareScope`.
fn scope(arg: &Arg) -> syn::Result<syn::Ident> {
    let message =
        "`scope` is `global` (every request) or `plugin` (this plugin's routes, the default)";
    let path = match &arg.value {
        args::Value::Expr(syn::Expr::Path(path)) => path.path.get_ident(),
        _ => None,
    };
    match path.map(|ident| (ident, ident.to_string())) {
        Some((ident, word)) if word == "global" => Ok(syn::Ident::new("Global", ident.span())),
        Some((ident, word)) if word == "plugin" => {
            Ok(syn::Ident::new("PluginRoutes", ident.span()))
        }
        _ => Err(syn::Error::new_spanned(&arg.value, message)),
    }
}

/// Checks the shape of the signature; returns the context argument's type, if any.
fn signature(sig: &syn::Signature) -> syn::Result<Option<syn::Type>> {
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format!("`#[middleware]` needs an `async fn`: {SIGNATURE}"),
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a middleware cannot be generic");
    }
    let mut context = None;
    match sig.inputs.len() {
        2 => {}
        3 => match &sig.inputs[0] {
            syn::FnArg::Typed(typed) => context = Some((*typed.ty).clone()),
            receiver => errors.spanned(receiver, SIGNATURE),
        },
        count => {
            let tokens = if count == 0 {
                quote!(#sig)
            } else {
                let inputs = &sig.inputs;
                quote!(#inputs)
            };
            errors.spanned(
                tokens,
                format!("{SIGNATURE}; this one takes {count} arguments"),
            );
        }
    }
    if let Some(receiver) = sig.receiver() {
        errors.spanned(receiver, SIGNATURE);
    }
    errors.into_result(context)
}

/// Checks the shape of a layer function: not async, not generic, at most a context.
fn layer_signature(sig: &syn::Signature) -> syn::Result<Option<syn::Type>> {
    let mut errors = Errors::default();
    if let Some(asyncness) = sig.asyncness {
        errors.spanned(
            asyncness,
            format!("`#[middleware(layer)]` takes a plain `fn`: {LAYER_SIGNATURE}"),
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a middleware cannot be generic");
    }
    if let syn::ReturnType::Default = sig.output {
        errors.spanned(
            &sig.ident,
            format!("`#[middleware(layer)]` returns the layer: {LAYER_SIGNATURE}"),
        );
    }
    let mut context = None;
    match sig.inputs.len() {
        0 => {}
        1 => match &sig.inputs[0] {
            syn::FnArg::Typed(typed) => context = Some((*typed.ty).clone()),
            receiver => errors.spanned(
                receiver,
                format!("a `#[middleware(layer)]` is {LAYER_SIGNATURE}"),
            ),
        },
        count => {
            let inputs = &sig.inputs;
            errors.spanned(
                quote!(#inputs),
                format!("a `#[middleware(layer)]` is {LAYER_SIGNATURE}; this one takes {count} arguments"),
            );
        }
    }
    errors.into_result(context)
}

fn generate(item: &TokenStream, middleware: &Middleware) -> TokenStream {
    let Middleware {
        function,
        keys: Keys {
            scope,
            priority,
            layer,
        },
        context,
    } = middleware;
    let ident = &function.sig.ident;
    let name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();

    // The context is built from the host by the one impl of `MiddlewareContext`, which
    // says what to write when the type is something else; it is its own crate's plugin's only.
    let (make_context, context_arg, ownership) = match context {
        Some(ty) => {
            let owner = crate::route::context_ownership(ty);
            (
                quote_spanned! {ty.span()=>
                    let context = <#ty as ::plexichat::__private::MiddlewareContext>::build(host);
                },
                quote!(context,),
                owner,
            )
        }
        None => (quote!(let _ = host;), quote!(), None),
    };
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let shim = if *layer {
        // The bound's message names what a layer must be, at the return type.
        let erase = quote_spanned! {output_span=>
            ::plexichat::__private::MiddlewareLayer::erase(layer)
        };
        quote! {
            fn shim(
                host: ::plexichat::__private::Host,
            ) -> ::plexichat::__private::ErasedLayer {
                #make_context
                let layer = #ident(#context_arg);
                #erase
            }
            const CALL: ::plexichat::__private::MiddlewareCall =
                ::plexichat::__private::MiddlewareCall::Layer(shim);
        }
    } else {
        let respond = quote_spanned! {output_span=>
            ::plexichat::__private::IntoResponse::into_response(response)
        };
        quote! {
            fn shim(
                host: ::plexichat::__private::Host,
                request: ::plexichat::__private::Request,
                next: ::plexichat::__private::Next,
            ) -> ::plexichat::__private::MiddlewareFuture {
                ::plexichat::__private::Box::pin(async move {
                    #make_context
                    let response = #ident(#context_arg request, next).await;
                    #respond
                })
            }
            const CALL: ::plexichat::__private::MiddlewareCall =
                ::plexichat::__private::MiddlewareCall::Function(shim);
        }
    };

    quote! {
        #item

        const _: () = {
            #ownership

            #shim

            ::plexichat::__private::register!(
                PLEXICHAT_MIDDLEWARE,
                ::plexichat::__private::MiddlewareDescriptor,
                ::plexichat::__private::MiddlewareDescriptor {
                    name: #name,
                    crate_name: #crate_name,
                    location: #location,
                    scope: ::plexichat::__private::MiddlewareScope::#scope,
                    priority: #priority,
                    call: CALL,
                }
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(args: TokenStream, item: TokenStream) -> String {
        let function = syn::parse2::<syn::ItemFn>(item);
        match validate(args::parse_args(args), function) {
            Ok(_) => String::new(),
            Err(error) => error
                .into_iter()
                .map(|error| error.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn every_mistake_of_one_middleware_is_reported_at_once() {
        let text = errors(
            quote!(scope = everywhere, priority = "high"),
            quote!(
                fn headers<T>(request: Request) -> Response {}
            ),
        );
        assert!(text.contains("`scope` is `global`"), "{text}");
        assert!(text.contains("`priority` expects an integer"), "{text}");
        assert!(text.contains("needs an `async fn`"), "{text}");
        assert!(text.contains("cannot be generic"), "{text}");
        assert!(text.contains("this one takes 1 arguments"), "{text}");
    }

    #[test]
    fn a_layer_is_a_plain_function_returning_it() {
        let function = quote!(
            fn compress(context: PluginContext<P>) -> CompressionLayer {}
        );
        assert_eq!(errors(quote!(layer), function), "");
        assert_eq!(
            errors(
                quote!(layer, scope = global),
                quote!(
                    fn limit() -> L {}
                )
            ),
            ""
        );
        let text = errors(
            quote!(layer),
            quote!(
                async fn wrong<T>(a: A, b: B) {}
            ),
        );
        assert!(text.contains("takes a plain `fn`"), "{text}");
        assert!(text.contains("cannot be generic"), "{text}");
        assert!(text.contains("returns the layer"), "{text}");
        assert!(text.contains("this one takes 2 arguments"), "{text}");
        // The function form's signature is still asked for without the flag.
        let text = errors(
            quote!(),
            quote!(
                fn limit() -> L {}
            ),
        );
        assert!(text.contains("needs an `async fn`"), "{text}");
    }

    #[test]
    fn a_context_argument_is_optional() {
        assert_eq!(
            errors(
                quote!(scope = global),
                quote!(
                    async fn a(request: Request, next: Next) -> Response {}
                )
            ),
            ""
        );
        assert_eq!(
            errors(
                quote!(),
                quote!(
                    async fn b(
                        context: PluginContext<P>,
                        request: Request,
                        next: Next,
                    ) -> Response {
                    }
                )
            ),
            ""
        );
    }
}
