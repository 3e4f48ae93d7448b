//! `#[config]`: a plugin configuration struct, with the derives routed through the facade.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args::{self, Errors};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(&args, "`#[config]` takes no arguments");
    }
    match syn::parse2::<syn::DeriveInput>(item.clone()) {
        Ok(input) => match &input.data {
            syn::Data::Struct(data) if matches!(data.fields, syn::Fields::Named(_)) => {}
            _ => errors.spanned(
                &input.ident,
                "`#[config]` must be placed on a struct with named fields (one per setting)",
            ),
        },
        Err(_) => errors.spanned(&item, "`#[config]` must be placed on a struct"),
    }
    if let Err(error) = errors.into_result(()) {
        return args::item_and_errors(&item, &error);
    }
    // `default` lets an operator write only the settings they change; `deny_unknown_fields`
    // turns a misspelt key into an error instead of a silently ignored line.
    quote! {
        #[derive(
            ::plexichat::__private::serde::Serialize,
            ::plexichat::__private::serde::Deserialize,
            ::plexichat::__private::schemars::JsonSchema
        )]
        #[serde(crate = "::plexichat::__private::serde", default, deny_unknown_fields)]
        #[schemars(crate = "::plexichat::__private::schemars")]
        #item
    }
}
