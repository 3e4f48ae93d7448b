//! `#[payload]`: a request or response body type, with serde and JSON Schema derives routed
//! through the facade, so a plugin needs no serde or schemars dependency of its own.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::{self, Errors};

/// Which directions the type travels in, from the attribute's argument.
#[derive(Clone, Copy)]
enum Direction {
    /// `#[payload]`: both.
    Both,
    /// `#[payload(request)]`: only parsed (`Deserialize`).
    Request,
    /// `#[payload(response)]`: only written (`Serialize`), so fields like `&'static str` work.
    Response,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let direction = match args.to_string().as_str() {
        "" => Direction::Both,
        "request" => Direction::Request,
        "response" => Direction::Response,
        _ => {
            errors.spanned(
                &args,
                "`#[payload]` takes no argument, `request` (parsed only) or `response` (written only)",
            );
            Direction::Both
        }
    };
    match syn::parse2::<syn::DeriveInput>(item.clone()) {
        Ok(input) if matches!(input.data, syn::Data::Union(_)) => errors.spanned(
            &input.ident,
            "`#[payload]` must be placed on a struct or enum; serde cannot derive a union",
        ),
        Ok(_) => {}
        Err(_) => errors.spanned(&item, "`#[payload]` must be placed on a struct or enum"),
    }
    if let Err(error) = errors.into_result(()) {
        return args::item_and_errors(&item, &error);
    }
    let serialize = quote!(::plexichat::__private::serde::Serialize);
    let deserialize = quote!(::plexichat::__private::serde::Deserialize);
    let derives = match direction {
        Direction::Both => quote!(#serialize, #deserialize),
        Direction::Request => deserialize,
        Direction::Response => serialize,
    };
    // The schema is derived in every direction: the API reference documents every body.
    quote! {
        #[derive(#derives, ::plexichat::__private::schemars::JsonSchema)]
        #[serde(crate = "::plexichat::__private::serde")]
        #[schemars(crate = "::plexichat::__private::schemars")]
        #item
    }
}
