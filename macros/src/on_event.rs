//! `#[on_event]`: a typed event handler registered into `PLEXICHAT_EVENT_HANDLERS`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::args::{self, Errors};

const SIGNATURES: &str = "`fn(event: &MyEvent)` or `fn(plugin: &MyPlugin, event: &MyEvent)`";

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let priority = match args::parse_args(args) {
        Ok(parsed) => priority(parsed, &mut errors),
        Err(error) => {
            errors.push(error);
            0
        }
    };
    let function = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(function) => Some(function),
        Err(_) => {
            errors.spanned(&item, "`#[on_event]` must be placed on a function");
            None
        }
    };
    let types = function
        .as_ref()
        .and_then(|function| argument_types(&function.sig, &mut errors));
    let crate_name = args::crate_name(&mut errors);
    if let Some(output) = errors.finish(&item) {
        return output;
    }
    let function = function.expect("checked");
    let (plugin, event) = types.expect("checked");
    let ident = &function.sig.ident;
    let handler_name = ident.to_string();
    let location = args::location(ident.span());

    // Spanned at the event type so "not an event" lands on the user's parameter.
    let event_name =
        quote_spanned! {event.span()=> <#event as ::plexichat::__private::Event>::NAME };
    let lookup = plugin.as_ref().map(|plugin| {
        quote_spanned! {plugin.span()=>
            let ::core::option::Option::Some(this) = runtime.plugin_ref::<#plugin>() else {
                return ::plexichat::__private::fail(::core::format_args!(
                    "plugin `{}` is not running",
                    <#plugin as ::plexichat::__private::Plugin>::NAME,
                ));
            };
        }
    });
    let call = match &plugin {
        Some(_) => quote!(#ident(this, event)),
        None => quote!(#ident(event)),
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
        let shim = quote! {
            fn shim<'a>(
                runtime: &'a ::plexichat::__private::Runtime,
                event: &'a (dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::HandlerFuture<'a> {
                ::plexichat::__private::Box::pin(async move {
                    #downcast
                    #lookup
                    ::plexichat::__private::HandlerOutcome::into_outcome(#call.await)
                })
            }
        };
        (shim, quote!(Async))
    } else {
        let shim = quote! {
            fn shim(
                runtime: &::plexichat::__private::Runtime,
                event: &(dyn ::plexichat::__private::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::plexichat::__private::Result<(), ::plexichat::__private::String> {
                #downcast
                #lookup
                ::plexichat::__private::HandlerOutcome::into_outcome(#call)
            }
        };
        (shim, quote!(Sync))
    };

    quote! {
        #item

        const _: () = {
            #[allow(unused_variables)]
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

fn priority(parsed: Vec<args::Arg>, errors: &mut Errors) -> i32 {
    let mut result = 0;
    let mut seen = Vec::new();
    for args::Arg { key, value, .. } in parsed {
        if key.unraw() != "priority" {
            errors.spanned(
                &key,
                format!("unknown key `{key}` in `#[on_event]`; expected: priority"),
            );
            continue;
        }
        if !args::first_time(&mut seen, &key, errors) {
            continue;
        }
        let args::Value::Expr(expression) = &value else {
            errors.spanned(
                &value,
                "`priority` expects an integer literal; higher runs first",
            );
            continue;
        };
        let (negative, literal) = match expression {
            syn::Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                ..
            }) => (true, &**expr),
            other => (false, other),
        };
        let parsed = match literal {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(int),
                ..
            }) => int.base10_parse::<i64>().ok(),
            _ => None,
        }
        .map(|magnitude| if negative { -magnitude } else { magnitude })
        .and_then(|value| i32::try_from(value).ok());
        match parsed {
            Some(value) => result = value,
            None => errors.spanned(
                &value,
                "`priority` expects an integer literal in i32 range; higher runs first",
            ),
        }
    }
    result
}

/// `(plugin, event)` types from `fn(&Event)` or `fn(&Plugin, &Event)`.
fn argument_types(
    sig: &syn::Signature,
    errors: &mut Errors,
) -> Option<(Option<syn::Type>, syn::Type)> {
    let mut ok = true;
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "an event handler cannot be generic");
        ok = false;
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(receiver) => {
                errors.spanned(
                    receiver,
                    format!("an event handler is a free function: {SIGNATURES}"),
                );
                ok = false;
            }
            syn::FnArg::Typed(typed) => match &*typed.ty {
                syn::Type::Reference(reference) if reference.mutability.is_none() => {
                    types.push((*reference.elem).clone())
                }
                other => {
                    errors.spanned(
                        other,
                        "take this argument by shared reference (`&T`): the event is shared by every handler",
                    );
                    ok = false;
                }
            },
        }
    }
    let count = sig.inputs.len();
    if count == 0 || count > 2 {
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        let got = if count == 0 {
            "none".to_string()
        } else {
            count.to_string()
        };
        errors.spanned(
            if count == 0 {
                quote!(#fn_token #ident)
            } else {
                sig.inputs.to_token_stream()
            },
            format!(
                "an event handler takes the event it handles: {SIGNATURES}; this one takes {got}"
            ),
        );
        return None;
    }
    if !ok {
        return None;
    }
    let event = types.pop().expect("one or two arguments");
    Some((types.pop(), event))
}
