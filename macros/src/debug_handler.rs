//! `#[debug_handler]`: what `axum::debug_handler` does, for handlers whose state is the
//! PlexiChat runtime and whose crate has no axum dependency: one compile check per argument,
//! for the return type and for the future being `Send`, each spanned at what it checks, so a
//! handler that "is not a handler" says which part is wrong.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let error = syn::Error::new_spanned(&args, "`#[debug_handler]` takes no arguments");
        return args::item_and_errors(&item, &error);
    }
    let function = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "`#[debug_handler]` must be placed on an `async fn` route handler",
            );
            return args::item_and_errors(&item, &error);
        }
    };
    let ident = &function.sig.ident;
    let types: Vec<&syn::Type> = args::argument_types(&function.sig).collect();
    let arguments = types.iter().enumerate().map(|(index, ty)| {
        // Only the last argument may consume the body (`FromRequest`); the others read the
        // request's head (`FromRequestParts`), which is axum's rule.
        if index + 1 == types.len() {
            quote_spanned! {ty.span()=>
                ::plexichat::__private::check_last_argument::<#ty, _>();
            }
        } else {
            quote_spanned! {ty.span()=>
                ::plexichat::__private::check_argument::<#ty>();
            }
        }
    });
    // `impl IntoResponse` cannot be named in a turbofish; the `Handler` bound checks it.
    let response = match &function.sig.output {
        syn::ReturnType::Type(_, ty) if !matches!(**ty, syn::Type::ImplTrait(_)) => {
            quote_spanned! {ty.span()=> ::plexichat::__private::check_response::<#ty>(); }
        }
        _ => quote!(),
    };
    let unreachable = types.iter().map(|_| quote!(::core::unreachable!()));
    let send = quote_spanned! {function.sig.fn_token.span()=>
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        ::plexichat::__private::check_send(#ident(#(#unreachable),*));
    };
    quote! {
        #item

        const _: () = {
            #[allow(dead_code, clippy::all)]
            fn check() {
                #(#arguments)*
                #response
                #send
            }
        };
    }
}
