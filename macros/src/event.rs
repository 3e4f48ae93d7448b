//! `#[event(name = "...")]`: a type publishable on the event bus.
//!
//! Parse ([`Input`]) → validate ([`Event`]) → expand ([`generate`]). On any error,
//! [`fallback`] still emits the type with its serde derive and an `Event` impl, so that
//! handlers and `publish` calls naming the type stay quiet and the mistake is the one message.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, LitStr};

use crate::args::{self, Arg, Check, Errors};

/// What the keys of `#[event]` set.
#[derive(Default)]
struct Keys {
    name: Option<syn::Result<LitStr>>,
    vetoable: bool,
}

/// The keys `#[event]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("name", |keys, arg, _| keys.name = Some(event_name(arg))),
    ("vetoable", |keys, arg, errors| {
        if let Some(value) = errors.ok(args::boolean(arg)) {
            keys.vetoable = value;
        }
    }),
];

const USAGE: &str = "`#[event]` needs a stable name: `#[event(name = \"my.event.name\")]`, and `vetoable` if pre-handlers may modify or reject it";

/// The parse step's output: syntax only.
struct Input {
    args: syn::Result<Vec<Arg>>,
    item: syn::Result<syn::DeriveInput>,
}

/// The validate step's output.
struct Event {
    ident: Ident,
    name: LitStr,
    vetoable: bool,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let input = Input {
        args: args::parse_args(args),
        item: syn::parse2(item.clone()).map_err(|_| {
            syn::Error::new_spanned(&item, "`#[event]` must be placed on a struct or enum")
        }),
    };
    match validate(&input) {
        Ok(event) => generate(&item, &event),
        Err(error) => fallback(&item, &input, &error),
    }
}

fn validate(input: &Input) -> syn::Result<Event> {
    let keys = match &input.args {
        Ok(args) => keys(args),
        Err(error) => Err(error.clone()),
    };
    let ident = match &input.item {
        Ok(item) => declared_type(item),
        Err(error) => Err(error.clone()),
    };
    args::both(keys, ident).map(|((name, vetoable), ident)| Event {
        ident,
        name,
        vetoable,
    })
}

/// The name and whether the event is vetoable.
fn keys(args: &[Arg]) -> syn::Result<(LitStr, bool)> {
    let mut keys = Keys::default();
    let mut errors = Errors::default();
    args::apply(args, KEYS, "`#[event]`", &mut keys, &mut errors);
    let vetoable = keys.vetoable;
    let name = match (errors.into_result(()), keys.name) {
        (Ok(()), Some(name)) => name,
        (Ok(()), None) => Err(syn::Error::new(proc_macro2::Span::call_site(), USAGE)),
        // A misspelt `name` is already reported with the keys that exist; "needs a name"
        // on top would be a second message for one mistake.
        (Err(error), None) => Err(error),
        (Err(error), Some(name)) => args::both(Err(error), name).map(|((), name)| name),
    };
    name.map(|name| (name, vetoable))
}

/// `name = "dotted.lowercase.words"`.
fn event_name(arg: &Arg) -> syn::Result<LitStr> {
    let lit = args::string(arg)?;
    if !args::is_dotted_name(&lit.value()) {
        return Err(syn::Error::new_spanned(
            &lit,
            "an event name is dotted lowercase words, e.g. `awesome.action.completed`",
        ));
    }
    Ok(lit)
}

fn declared_type(input: &syn::DeriveInput) -> syn::Result<Ident> {
    if matches!(input.data, syn::Data::Union(_)) {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`#[event]` must be placed on a struct or enum",
        ));
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "an event type cannot be generic: its name must be unique",
        ));
    }
    Ok(input.ident.clone())
}

/// The item with the serde derive `Event` requires, then `impl Event` (and `impl Vetoable`
/// when declared so).
fn with_event_impl(
    item: &TokenStream,
    ident: &Ident,
    name: &TokenStream,
    vetoable: bool,
) -> TokenStream {
    let vetoable = vetoable.then(|| {
        quote! {
            #[automatically_derived]
            impl ::plexichat::__private::Vetoable for #ident {}
        }
    });
    // serde's derive would otherwise look for a `serde` crate in the plugin's own
    // dependencies; pointing it at the facade keeps plugins depending on `plexichat` only.
    quote! {
        #[derive(::plexichat::__private::serde::Serialize)]
        #[serde(crate = "::plexichat::__private::serde")]
        #item

        #[automatically_derived]
        impl ::plexichat::__private::Event for #ident {
            const NAME: &'static ::core::primitive::str = #name;
        }
        #vetoable
    }
}

fn generate(item: &TokenStream, event: &Event) -> TokenStream {
    let Event {
        ident,
        name,
        vetoable,
    } = event;
    let with_impl = with_event_impl(item, ident, &quote!(#name), *vetoable);
    let type_name = ident.to_string();
    let crate_name = args::crate_name();
    let location = args::location(ident.span());
    // Registered so that listings can say which Rust type carries which name.
    quote! {
        #with_impl

        ::plexichat::__private::register!(
            PLEXICHAT_EVENTS,
            ::plexichat::__private::EventDescriptor,
            ::plexichat::__private::EventDescriptor {
                name: #name,
                type_name: ::core::concat!(::core::module_path!(), "::", #type_name),
                crate_name: #crate_name,
                location: #location,
                vetoable: #vetoable,
            }
        );
    }
}

/// What `#[event]` emits when it has a mistake: the errors, and, when the item is a plain
/// struct or enum, everything a valid `#[event]` would give it.
fn fallback(item: &TokenStream, input: &Input, error: &syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    match input.item.as_ref().map(declared_type) {
        Ok(Ok(ident)) => {
            // Vetoable too, so that its pre-handlers stay quiet: the mistake is in the keys.
            let with_impl =
                with_event_impl(item, &ident, &quote!(::core::stringify!(#ident)), true);
            quote! { #with_impl #errors }
        }
        _ => quote! { #item #errors },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mistake_still_gives_the_type_what_event_needs() {
        let expansion = expand(
            quote!(nmae = "my.event"),
            quote!(
                struct Happened;
            ),
        );
        let file: syn::File = syn::parse2(expansion).unwrap();
        let syn::Item::Struct(item) = &file.items[0] else {
            panic!("the item comes first");
        };
        let derive = &item.attrs[0];
        assert!(derive.path().is_ident("derive"));
        assert!(quote!(#derive).to_string().contains("Serialize"));
        assert!(file.items.iter().any(|item| matches!(
            item,
            syn::Item::Impl(syn::ItemImpl { trait_: Some((_, path, _)), .. })
                if path.segments.last().unwrap().ident == "Event"
        )));
    }
}
