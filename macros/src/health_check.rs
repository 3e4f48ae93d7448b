//! `#[health_check(liveness)]` / `#[health_check(readiness)]`: a named check of a plugin,
//! registered into `PLEXICHAT_HEALTH_CHECKS`.
//!
//! Parse (arguments and the function) → validate ([`Check`]) → expand ([`generate`]).
//! Nothing else names a check, so on error the function is emitted unchanged with the errors.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, Arg, Errors};

const USAGE: &str = "say what the check is for: `#[health_check(liveness)]` (failing repeatedly restarts the plugin) or `#[health_check(readiness)]` (failing makes `/ready` answer 503)";
const SIGNATURE: &str = "a health check is `fn(context: &PluginContext<MyPlugin>) -> Result<(), E>`, `fn(plugin: &MyPlugin) -> Result<(), E>` or `fn() -> Result<(), E>`, sync or async";

/// The validate step's output.
struct Check {
    function: syn::ItemFn,
    /// `Liveness` or `Readiness`, the variant of `HealthKind`.
    kind: syn::Ident,
    /// The type behind the `&T` argument, when it takes one.
    argument: Option<syn::Type>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[health_check]` must be placed on a function")
    });
    match validate(args::parse_args(args), function) {
        Ok(check) => generate(&item, &check),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(args: syn::Result<Vec<Arg>>, function: syn::Result<syn::ItemFn>) -> syn::Result<Check> {
    let kind = args.and_then(|args| kind(&args));
    let function = function.and_then(|function| {
        let argument = signature(&function.sig)?;
        Ok((function, argument))
    });
    args::both(kind, function).map(|(kind, (function, argument))| Check {
        function,
        kind,
        argument,
    })
}

/// Exactly one of the flags `liveness` and `readiness`.
fn kind(args: &[Arg]) -> syn::Result<syn::Ident> {
    let mut errors = Errors::default();
    let mut kinds = Vec::new();
    for arg in args {
        let key = arg.key.to_string();
        let variant = match key.as_str() {
            "liveness" => "Liveness",
            "readiness" => "Readiness",
            _ => {
                errors.spanned(
                    &arg.key,
                    format!("unknown key `{key}` in `#[health_check]`; expected one of: liveness, readiness"),
                );
                continue;
            }
        };
        match args::boolean(arg) {
            Ok(true) => kinds.push(syn::Ident::new(variant, arg.key.span())),
            Ok(false) => errors.spanned(
                &arg.value,
                format!("write `{key}` alone, or the other kind"),
            ),
            Err(error) => errors.push(error),
        }
    }
    match kinds.as_slice() {
        [kind] => errors.into_result(kind.clone()),
        [] => {
            errors.push(syn::Error::new(Span::call_site(), USAGE));
            errors.into_result(format_ident!("Liveness"))
        }
        [_, second, ..] => {
            errors.spanned(
                second,
                "a check is either `liveness` or `readiness`; write two functions for both",
            );
            errors.into_result(format_ident!("Liveness"))
        }
    }
}

/// The type behind the one `&T` argument, if there is one.
fn signature(sig: &syn::Signature) -> syn::Result<Option<syn::Type>> {
    let mut errors = Errors::default();
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a health check cannot be generic");
    }
    let argument = match sig.inputs.len() {
        0 => None,
        1 => match &sig.inputs[0] {
            syn::FnArg::Typed(typed) => match &*typed.ty {
                syn::Type::Reference(reference) if reference.mutability.is_none() => {
                    Some((*reference.elem).clone())
                }
                other => {
                    errors.spanned(other, format!("take it by shared reference: {SIGNATURE}"));
                    None
                }
            },
            receiver => {
                errors.spanned(receiver, SIGNATURE);
                None
            }
        },
        count => {
            let inputs = &sig.inputs;
            errors.spanned(
                quote!(#inputs),
                format!("{SIGNATURE}; this one takes {count}"),
            );
            None
        }
    };
    errors.into_result(argument)
}

fn generate(item: &TokenStream, check: &Check) -> TokenStream {
    let Check {
        function,
        kind,
        argument,
    } = check;
    let ident = &function.sig.ident;
    let name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();
    let awaited = function.sig.asyncness.map(|_| quote!(.await));

    // The plugin or its context, found the way an event handler's first argument is: the
    // one impl of `PluginArgument` that fits the type decides, `CheckArgument` refuses an
    // event there, and each says what to write. A context is its own crate's plugin's only.
    let (lookup, call, ownership) = match argument {
        Some(ty) => {
            let ownership = crate::route::context_ownership(ty);
            let instance = quote_spanned! {ty.span()=>
                const INSTANCE: ::plexichat::__private::InstanceFn<#ty> =
                    ::plexichat::__private::health_check_argument::<#ty, _>();
            };
            (
                quote!(let this = INSTANCE(host, ::core::env!("CARGO_CRATE_NAME"))?;),
                quote!(#ident(&*this) #awaited),
                quote!(#ownership #instance),
            )
        }
        None => (quote!(let _ = host;), quote!(#ident() #awaited), quote!()),
    };
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let report = quote_spanned! {output_span=>
        ::plexichat::__private::CheckOutcome::into_result({ #call })
    };

    quote! {
        #item

        const _: () = {
            #ownership

            #[allow(unused_braces)]
            fn shim<'a>(
                host: &'a ::plexichat::__private::Host,
            ) -> ::plexichat::__private::HealthFuture<'a> {
                ::plexichat::__private::Box::pin(async move {
                    #lookup
                    #report
                })
            }

            ::plexichat::__private::register!(
                PLEXICHAT_HEALTH_CHECKS,
                ::plexichat::__private::HealthCheckDescriptor,
                ::plexichat::__private::HealthCheckDescriptor {
                    name: #name,
                    crate_name: #crate_name,
                    location: #location,
                    kind: ::plexichat::__private::HealthKind::#kind,
                    call: shim,
                }
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(args: TokenStream, item: TokenStream) -> String {
        match validate(args::parse_args(args), syn::parse2::<syn::ItemFn>(item)) {
            Ok(_) => String::new(),
            Err(error) => error
                .into_iter()
                .map(|error| error.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn a_check_is_exactly_one_kind() {
        let function = quote!(
            async fn reachable(context: &PluginContext<P>) -> Result<(), String> {}
        );
        assert_eq!(errors(quote!(readiness), function.clone()), "");
        assert_eq!(errors(quote!(liveness), function.clone()), "");
        assert!(errors(quote!(), function.clone()).contains("say what the check is for"));
        assert!(
            errors(quote!(liveness, readiness), function.clone()).contains("either `liveness`")
        );
        assert!(errors(quote!(readyness), function).contains("unknown key `readyness`"));
    }

    #[test]
    fn every_signature_mistake_is_reported_at_once() {
        let text = errors(
            quote!(liveness),
            quote!(
                fn broken<T>(a: PluginContext<P>, b: u8) {}
            ),
        );
        assert!(text.contains("cannot be generic"), "{text}");
        assert!(text.contains("this one takes 2"), "{text}");
    }
}
