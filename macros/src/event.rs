//! `#[event(name = "...")]`: a type publishable on the event bus.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;

use crate::args::{self, Errors};

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let mut name = None;
    match args::parse_args(args) {
        Ok(parsed) => {
            let mut seen = Vec::new();
            for args::Arg { key, value, .. } in parsed {
                if key.unraw() != "name" {
                    errors.spanned(
                        &key,
                        format!("unknown key `{key}` in `#[event]`; expected: name"),
                    );
                    continue;
                }
                if !args::first_time(&mut seen, &key, &mut errors) {
                    continue;
                }
                if let Some(lit) = args::string(&value, &key, &mut errors) {
                    if args::is_dotted_name(&lit.value()) {
                        name = Some(lit);
                    } else {
                        errors.spanned(
                            &lit,
                            "an event name is dotted lowercase words, e.g. `awesome.action.completed`",
                        );
                    }
                }
            }
            if seen.is_empty() {
                errors.at(
                    proc_macro2::Span::call_site(),
                    "`#[event]` needs a stable name: `#[event(name = \"my.event.name\")]`",
                );
            }
        }
        Err(error) => errors.push(error),
    }
    let ident = match syn::parse2::<syn::DeriveInput>(item.clone()) {
        Ok(input) if matches!(input.data, syn::Data::Union(_)) => {
            errors.spanned(
                &input.ident,
                "`#[event]` must be placed on a struct or enum",
            );
            None
        }
        Ok(input) if !input.generics.params.is_empty() => {
            errors.spanned(
                &input.generics,
                "an event type cannot be generic: its name must be unique",
            );
            None
        }
        Ok(input) => Some(input.ident),
        Err(_) => {
            errors.spanned(&item, "`#[event]` must be placed on a struct or enum");
            None
        }
    };
    if let Some(output) = errors.finish(&item) {
        return output;
    }
    let (ident, name) = (ident.expect("checked"), name.expect("checked"));
    // serde's derive would otherwise look for a `serde` crate in the plugin's own
    // dependencies; pointing it at the facade keeps plugins depending on `plexichat` only.
    quote! {
        #[derive(::plexichat::__private::serde::Serialize)]
        #[serde(crate = "::plexichat::__private::serde")]
        #item

        #[automatically_derived]
        impl ::plexichat::__private::Event for #ident {
            const NAME: &'static str = #name;
        }
    }
}
