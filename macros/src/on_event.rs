//! `#[on_event]`: a typed event handler registered into `PLEXICHAT_EVENT_HANDLERS`.
//!
//! Parse (arguments and the function) → validate ([`Handler`]) → expand ([`generate`]).
//! Nothing else names a handler, so on error the function is emitted unchanged with the errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

use crate::args::{self, Arg, Check, Errors};

const SIGNATURES: &str = "`fn(event: &MyEvent)`, `fn(plugin: &MyPlugin, event: &MyEvent)` or `fn(context: &PluginContext<MyPlugin>, event: &MyEvent)`";

/// The keys `#[on_event]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<i32>)] = &[("priority", |priority, arg, errors| {
    if let Some(value) = errors.ok(self::priority(arg)) {
        *priority = value;
    }
})];

/// The validate step's output: a handler of one event type, optionally with its plugin.
struct Handler {
    function: syn::ItemFn,
    priority: i32,
    plugin: Option<syn::Type>,
    event: syn::Type,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone())
        .map_err(|_| syn::Error::new_spanned(&item, "`#[on_event]` must be placed on a function"));
    match validate(args::parse_args(args), function) {
        Ok(handler) => generate(&item, &handler),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(
    args: syn::Result<Vec<Arg>>,
    function: syn::Result<syn::ItemFn>,
) -> syn::Result<Handler> {
    let priority = args.and_then(|args| {
        let (mut priority, mut errors) = (0, Errors::default());
        args::apply(&args, KEYS, "`#[on_event]`", &mut priority, &mut errors);
        errors.into_result(priority)
    });
    let function = function.and_then(|function| {
        let types = argument_types(&function.sig)?;
        Ok((function, types))
    });
    args::both(priority, function).map(|(priority, (function, (plugin, event)))| Handler {
        function,
        priority,
        plugin,
        event,
    })
}

fn generate(item: &TokenStream, handler: &Handler) -> TokenStream {
    let Handler {
        function,
        priority,
        plugin,
        event,
    } = handler;
    let ident = &function.sig.ident;
    let handler_name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();

    // Every check of the signature is in this one `const`, so that a type that is neither an
    // event nor a plugin gives one error, not one per use (see `abi/event.rs`). rustc points a
    // failed bound at the turbofish argument it is about, the user's type; the rest of the
    // call is spanned at the event type.
    let signature = Ident::new("__PLEXICHAT_HANDLER_SIGNATURE", Span::call_site());
    let (check, event_name, lookup) = match plugin {
        Some(plugin) => (
            quote_spanned! {event.span()=>
                const #signature: ::plexichat::__private::TwoArguments<#plugin> =
                    ::plexichat::__private::two_argument_handler::<#plugin, #event, _, _>();
            },
            quote!(#signature.event),
            quote! {
                let this = match (#signature.instance)(runtime) {
                    ::core::result::Result::Ok(this) => this,
                    ::core::result::Result::Err(error) => {
                        return ::plexichat::__private::fail(::core::format_args!("{}", error));
                    }
                };
            },
        ),
        None => (
            quote_spanned! {event.span()=>
                const #signature: &::core::primitive::str =
                    ::plexichat::__private::one_argument_handler::<#event, _>();
            },
            quote!(#signature),
            quote!(),
        ),
    };
    // A context is its own plugin's only (as in `#[route]`); matched by name, as written.
    let ownership_check = plugin.as_ref().and_then(|plugin| {
        let sig: syn::Signature = syn::parse_quote!(fn f(context: #plugin));
        crate::route::plugin_arguments(&sig, &["PluginContext"])
            .first()
            .map(|owner| {
                let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
                quote_spanned! {owner.span()=>
                    const _: () = ::plexichat::__private::owns::<#crate_id, #owner>();
                }
            })
    });
    let call = match &plugin {
        Some(_) => quote!(#ident(&*this, event)),
        None => quote!(#ident(event)),
    };
    // The handler's result is reported through a block spanned at the declared return type,
    // so "not a handler outcome" lands on that type (the shim allows the braces, which rustc
    // would otherwise call unnecessary at that span).
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let report = |result: TokenStream| {
        quote_spanned! {output_span=>
            ::plexichat::__private::HandlerOutcome::into_outcome({ #result })
        }
    };
    let downcast = quote! {
        let ::core::option::Option::Some(event) = event.downcast_ref::<#event>() else {
            return ::plexichat::__private::fail(::core::format_args!(
                "event bus delivered another type than `{}`",
                ::core::any::type_name::<#event>(),
            ));
        };
    };
    let (shim, kind) = if function.sig.asyncness.is_some() {
        let report_async = report(quote!(#call.await));
        let shim = quote! {
            fn shim<'a>(
                runtime: &'a ::plexichat::__private::Runtime,
                event: &'a (dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::HandlerFuture<'a> {
                ::plexichat::__private::Box::pin(async move {
                    #downcast
                    #lookup
                    #report_async
                })
            }
        };
        (shim, quote!(Async))
    } else {
        let report_sync = report(call);
        let shim = quote! {
            fn shim(
                runtime: &::plexichat::__private::Runtime,
                event: &(dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::Result<(), ::plexichat::__private::String> {
                #downcast
                #lookup
                #report_sync
            }
        };
        (shim, quote!(Sync))
    };

    quote! {
        #item

        const _: () = {
            #check
            #ownership_check

            #[allow(unused_variables, unused_braces)]
            #shim

            ::plexichat::__private::register!(
                PLEXICHAT_EVENT_HANDLERS,
                ::plexichat::__private::EventHandlerDescriptor,
                ::plexichat::__private::EventHandlerDescriptor {
                    event: #event_name,
                    event_type: ::plexichat::__private::TypeId::of::<#event>,
                    handler: #handler_name,
                    crate_name: #crate_name,
                    location: #location,
                    priority: #priority,
                    call: ::plexichat::__private::HandlerFn::#kind(shim),
                }
            );
        };
    }
}

/// `priority = -3`: an integer literal in i32 range.
fn priority(arg: &Arg) -> syn::Result<i32> {
    let message = "`priority` expects an integer literal in i32 range; higher runs first";
    let args::Value::Expr(expression) = &arg.value else {
        return Err(syn::Error::new_spanned(&arg.value, message));
    };
    let (negative, literal) = match expression {
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => (true, &**expr),
        other => (false, other),
    };
    match literal {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => int.base10_parse::<i64>().ok(),
        _ => None,
    }
    .map(|magnitude| if negative { -magnitude } else { magnitude })
    .and_then(|value| i32::try_from(value).ok())
    .ok_or_else(|| syn::Error::new_spanned(&arg.value, message))
}

/// `(plugin, event)` types from `fn(&Event)` or `fn(&Plugin, &Event)`.
fn argument_types(sig: &syn::Signature) -> syn::Result<(Option<syn::Type>, syn::Type)> {
    let generics = if sig.generics.params.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            &sig.generics,
            "an event handler cannot be generic",
        ))
    };
    let mut types = sig.inputs.iter().map(argument_type);
    let types = match (types.next(), types.next(), types.next()) {
        (Some(event), None, None) => event.map(|event| (None, event)),
        (Some(plugin), Some(event), None) => {
            args::both(plugin, event).map(|(plugin, event)| (Some(plugin), event))
        }
        _ => Err(argument_count(sig)),
    };
    args::both(generics, types).map(|((), types)| types)
}

/// The type behind one `&T` argument.
fn argument_type(input: &syn::FnArg) -> syn::Result<syn::Type> {
    match input {
        syn::FnArg::Receiver(receiver) => Err(syn::Error::new_spanned(
            receiver,
            format!("an event handler is a free function: {SIGNATURES}"),
        )),
        syn::FnArg::Typed(typed) => match &*typed.ty {
            syn::Type::Reference(reference) if reference.mutability.is_none() => {
                Ok((*reference.elem).clone())
            }
            other => Err(syn::Error::new_spanned(
                other,
                "take this argument by shared reference (`&T`): the event is shared by every handler",
            )),
        },
    }
}

/// The error for a handler with no arguments or more than two.
fn argument_count(sig: &syn::Signature) -> syn::Error {
    let count = sig.inputs.len();
    let (fn_token, ident) = (&sig.fn_token, &sig.ident);
    let (tokens, got) = if count == 0 {
        (quote!(#fn_token #ident), "none".to_string())
    } else {
        (sig.inputs.to_token_stream(), count.to_string())
    };
    syn::Error::new_spanned(
        tokens,
        format!("an event handler takes the event it handles: {SIGNATURES}; this one takes {got}"),
    )
}
