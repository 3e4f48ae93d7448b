//! `#[on_event]`: a typed event handler registered into `PLEXICHAT_EVENT_HANDLERS`.
//!
//! Parse (arguments and the function) → validate ([`Handler`]) → expand ([`generate`]).
//! Nothing else names a handler, so on error the function is emitted unchanged with the errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Token};

use crate::args::{self, Arg, Check, Errors};

const SIGNATURES: &str = "`fn(event: &MyEvent)`, `fn(plugin: &MyPlugin, event: &MyEvent)` or `fn(context: &PluginContext<MyPlugin>, event: &MyEvent)`";

/// What the keys of `#[on_event]` set.
#[derive(Default)]
struct Keys {
    priority: i32,
    pre: bool,
}

/// The keys `#[on_event]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("priority", |keys, arg, errors| {
        if let Some(value) = errors.ok(self::priority(arg)) {
            keys.priority = value;
        }
    }),
    ("pre", |keys, arg, errors| {
        if let Some(value) = errors.ok(args::boolean(arg)) {
            keys.pre = value;
        }
    }),
];

/// The validate step's output: a handler of one event type, optionally with its plugin.
struct Handler {
    function: syn::ItemFn,
    keys: Keys,
    plugin: Option<syn::Type>,
    event: Event,
}

/// The event argument: its type, and whether a pre-handler takes it by `&mut`.
struct Event {
    ty: syn::Type,
    mutable: bool,
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
    let keys = args.and_then(|args| {
        let (mut keys, mut errors) = (Keys::default(), Errors::default());
        args::apply(&args, KEYS, "`#[on_event]`", &mut keys, &mut errors);
        errors.into_result(keys)
    });
    // Whether `&mut` is allowed depends on `pre`; with broken keys, judge the signature as
    // if it were right about that, so one mistake is one message.
    let pre = keys.as_ref().ok().map(|keys| keys.pre);
    let function = function.and_then(|function| {
        let types = argument_types(&function.sig, pre)?;
        Ok((function, types))
    });
    args::both(keys, function).map(|(keys, (function, (plugin, event)))| Handler {
        function,
        keys,
        plugin,
        event,
    })
}

fn generate(item: &TokenStream, handler: &Handler) -> TokenStream {
    let Handler {
        function,
        keys: Keys { priority, pre },
        plugin,
        event: Event { ty: event, mutable },
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
    let (one_argument, two_arguments) = if *pre {
        (
            quote!(one_argument_pre_handler),
            quote!(two_argument_pre_handler),
        )
    } else {
        (quote!(one_argument_handler), quote!(two_argument_handler))
    };
    let (check, event_name, lookup) = match plugin {
        Some(plugin) => (
            quote_spanned! {event.span()=>
                const #signature: ::plexichat::__private::TwoArguments<#plugin> =
                    ::plexichat::__private::#two_arguments::<#plugin, #event, _, _>();
            },
            quote!(#signature.event),
            quote! {
                let this = match (#signature.instance)(host, ::core::env!("CARGO_CRATE_NAME")) {
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
                    ::plexichat::__private::#one_argument::<#event, _>();
            },
            quote!(#signature),
            quote!(),
        ),
    };
    let ownership_check = plugin.as_ref().and_then(crate::route::context_ownership);
    // A pre-handler that takes `&E` only judges; the shim holds `&mut E` either way.
    let event_arg = if *pre && !*mutable {
        quote!(&*event)
    } else {
        quote!(event)
    };
    let call = match &plugin {
        Some(_) => quote!(#ident(&*this, #event_arg)),
        None => quote!(#ident(#event_arg)),
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
    // A pre-handler's shim gets the event mutably, so its changes reach the proposer.
    let (downcast_fn, reference, async_reference, prefix) = if *pre {
        (
            quote!(downcast_mut),
            quote!(&mut),
            quote!(&'a mut),
            quote!(Pre),
        )
    } else {
        (quote!(downcast_ref), quote!(&), quote!(&'a), quote!())
    };
    let downcast = quote! {
        let ::core::option::Option::Some(event) = event.#downcast_fn::<#event>() else {
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
                host: &'a ::plexichat::__private::Host,
                event: #async_reference (dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::HandlerFuture<'a> {
                ::plexichat::__private::Box::pin(async move {
                    #downcast
                    #lookup
                    #report_async
                })
            }
        };
        (shim, format_ident!("{}Async", prefix.to_string()))
    } else {
        let report_sync = report(call);
        let shim = quote! {
            fn shim(
                host: &::plexichat::__private::Host,
                event: #reference (dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::Result<(), ::plexichat::__private::String> {
                #downcast
                #lookup
                #report_sync
            }
        };
        (shim, format_ident!("{}Sync", prefix.to_string()))
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
pub(crate) fn priority(arg: &Arg) -> syn::Result<i32> {
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

/// `(plugin, event)` types from `fn(&Event)` or `fn(&Plugin, &Event)`; a pre-handler (`pre`
/// is `Some(true)`, or unknown) may take its event as `&mut Event`.
fn argument_types(
    sig: &syn::Signature,
    pre: Option<bool>,
) -> syn::Result<(Option<syn::Type>, Event)> {
    let generics = if sig.generics.params.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            &sig.generics,
            "an event handler cannot be generic",
        ))
    };
    let may_change = pre != Some(false);
    let mut inputs = sig.inputs.iter();
    let types = match (inputs.next(), inputs.next(), inputs.next()) {
        (Some(event), None, None) => event_argument(event, may_change).map(|event| (None, event)),
        (Some(plugin), Some(event), None) => args::both(
            argument_type(plugin).and_then(|(ty, mutable)| match mutable {
                Some(mutable) => Err(syn::Error::new_spanned(
                    mutable,
                    "take the plugin by shared reference (`&MyPlugin`)",
                )),
                None => Ok(ty),
            }),
            event_argument(event, may_change),
        )
        .map(|(plugin, event)| (Some(plugin), event)),
        _ => Err(argument_count(sig)),
    };
    args::both(generics, types).map(|((), types)| types)
}

/// The event argument: `&E`, or `&mut E` where a pre-handler may change it.
fn event_argument(input: &syn::FnArg, may_change: bool) -> syn::Result<Event> {
    let (ty, mutable) = argument_type(input)?;
    match mutable {
        Some(mutable) if !may_change => Err(syn::Error::new_spanned(
            mutable,
            "only a pre-handler may change its event: write `#[on_event(pre)]` for a vetoable event, or take `&MyEvent`",
        )),
        mutable => Ok(Event {
            ty,
            mutable: mutable.is_some(),
        }),
    }
}

/// The type behind one `&T` or `&mut T` argument, with the `mut` if there is one.
fn argument_type(input: &syn::FnArg) -> syn::Result<(syn::Type, Option<Token![mut]>)> {
    match input {
        syn::FnArg::Receiver(receiver) => Err(syn::Error::new_spanned(
            receiver,
            format!("an event handler is a free function: {SIGNATURES}"),
        )),
        syn::FnArg::Typed(typed) => match &*typed.ty {
            syn::Type::Reference(reference) => {
                Ok(((*reference.elem).clone(), reference.mutability))
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
