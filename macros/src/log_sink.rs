//! `#[log_sink]`: a function that receives batches of the server's structured log records,
//! registered into `PLEXICHAT_LOG_SINKS`.
//!
//! Parse (arguments and the function) → validate ([`Sink`]) → expand ([`generate`]).
//! Nothing else names a sink, so on error the function is emitted unchanged with the errors.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, Arg, Check, Errors, Value};

const SIGNATURE: &str = "a log sink is `fn(context: &PluginContext<MyPlugin>, records: &[LogRecord]) -> Result<(), E>` (or `&MyPlugin` first), sync or async";
/// The levels, least severe first, as `level = ".."` takes them.
const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
/// The largest queue a sink may ask for.
const MAX_CAPACITY: usize = 1 << 20;

/// The keys `#[log_sink]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("plugins", |keys, arg, errors| {
        keys.plugins = errors.ok(args::each(arg, plugin_name)).unwrap_or_default();
    }),
    ("level", |keys, arg, errors| {
        keys.level = errors.ok(level(arg));
    }),
    ("capacity", |keys, arg, errors| {
        keys.capacity = errors.ok(capacity(arg));
    }),
];

#[derive(Default)]
struct Keys {
    plugins: Vec<syn::LitStr>,
    /// The `LogLevel` variant.
    level: Option<syn::Ident>,
    capacity: Option<usize>,
}

/// The validate step's output.
struct Sink {
    keys: Keys,
    function: syn::ItemFn,
    /// The type behind the first `&T` argument.
    argument: syn::Type,
    /// The second argument's type, as written.
    records: syn::Type,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone())
        .map_err(|_| syn::Error::new_spanned(&item, "`#[log_sink]` must be placed on a function"));
    match validate(args::parse_args(args), function) {
        Ok(sink) => generate(&item, &sink),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(args: syn::Result<Vec<Arg>>, function: syn::Result<syn::ItemFn>) -> syn::Result<Sink> {
    let keys = args.and_then(|args| {
        let mut errors = Errors::default();
        let mut keys = Keys::default();
        args::apply(&args, KEYS, "`#[log_sink]`", &mut keys, &mut errors);
        errors.into_result(keys)
    });
    let function = function.and_then(|function| {
        let (argument, records) = signature(&function.sig)?;
        Ok((function, argument, records))
    });
    args::both(keys, function).map(|(keys, (function, argument, records))| Sink {
        keys,
        function,
        argument,
        records,
    })
}

/// One element of `plugins = ["channels", "plexichat"]`: a plugin's name.
fn plugin_name(value: &Value) -> syn::Result<syn::LitStr> {
    let key = quote::format_ident!("plugins");
    let literal = args::string_element(value, &key)?;
    let text = literal.value();
    let valid = text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(literal)
    } else {
        Err(syn::Error::new_spanned(
            literal,
            format!(
                "`{text}` is not a plugin name: lowercase letters, digits and `_` (`plexichat` for core's records)"
            ),
        ))
    }
}

/// `level = "warn"`: the least severe level the sink takes.
fn level(arg: &Arg) -> syn::Result<syn::Ident> {
    let literal = args::string(arg)?;
    let text = literal.value();
    if LEVELS.contains(&text.as_str()) {
        let mut variant = text[..1].to_uppercase();
        variant.push_str(&text[1..]);
        Ok(syn::Ident::new(&variant, literal.span()))
    } else {
        let meant = plexichat_rules::closest(&text, LEVELS)
            .map(|meant| format!("did you mean `{meant}`? "))
            .unwrap_or_default();
        Err(syn::Error::new_spanned(
            literal,
            format!(
                "unknown level `{text}`; {meant}expected one of: {}",
                LEVELS.join(", ")
            ),
        ))
    }
}

/// `capacity = 4096`: records the sink may fall behind by.
fn capacity(arg: &Arg) -> syn::Result<usize> {
    let message = format!(
        "`capacity` is how many records may wait for the sink before they are dropped: a number from 1 to {MAX_CAPACITY}, like `capacity = 4096`"
    );
    match &arg.value {
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(number),
            ..
        })) => match number.base10_parse::<usize>() {
            Ok(count) if (1..=MAX_CAPACITY).contains(&count) => Ok(count),
            _ => Err(syn::Error::new_spanned(number, message)),
        },
        other => Err(syn::Error::new_spanned(other, message)),
    }
}

/// The two arguments' types: what is behind the first `&T`, and the second as written.
fn signature(sig: &syn::Signature) -> syn::Result<(syn::Type, syn::Type)> {
    let mut errors = Errors::default();
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a log sink cannot be generic");
    }
    let inputs: Vec<&syn::FnArg> = sig.inputs.iter().collect();
    let typed = |input: &syn::FnArg, errors: &mut Errors| match input {
        syn::FnArg::Typed(typed) => Some((*typed.ty).clone()),
        receiver => {
            errors.spanned(receiver, SIGNATURE);
            None
        }
    };
    let (argument, records) = match inputs.as_slice() {
        [first, second] => {
            let argument = typed(first, &mut errors).and_then(|ty| match ty {
                syn::Type::Reference(reference) if reference.mutability.is_none() => {
                    Some(*reference.elem)
                }
                other => {
                    errors.spanned(&other, format!("take it by shared reference: {SIGNATURE}"));
                    None
                }
            });
            (argument, typed(second, &mut errors))
        }
        _ => {
            let span = if inputs.is_empty() {
                sig.paren_token.span.join()
            } else {
                sig.inputs.span()
            };
            errors.push(syn::Error::new(
                span,
                format!("{SIGNATURE}; this one takes {}", inputs.len()),
            ));
            (None, None)
        }
    };
    // Each missing type pushed its error above, so the placeholder never expands.
    let placeholder: syn::Type = syn::parse_quote!(());
    errors.into_result((
        argument.unwrap_or_else(|| placeholder.clone()),
        records.unwrap_or(placeholder),
    ))
}

fn generate(item: &TokenStream, sink: &Sink) -> TokenStream {
    let Sink {
        keys,
        function,
        argument,
        records,
    } = sink;
    let ident = &function.sig.ident;
    let name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();
    let awaited = function.sig.asyncness.map(|_| quote!(.await));
    let plugins = &keys.plugins;
    let level = keys
        .level
        .clone()
        .unwrap_or_else(|| syn::Ident::new("Info", ident.span()));
    let capacity = keys.capacity.unwrap_or(4096);

    // The first argument is found the way a health check's is; the second must be the
    // records, checked where it is written.
    let ownership = crate::route::context_ownership(argument);
    let instance = quote_spanned! {argument.span()=>
        const INSTANCE: ::plexichat::__private::InstanceFn<#argument> =
            ::plexichat::__private::sink_argument::<#argument, _>();
    };
    let records_check = quote_spanned! {records.span()=>
        let records: #records = records;
    };
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let report = quote_spanned! {output_span=>
        ::plexichat::__private::SinkOutcome::into_result({ #ident(&*this, records) #awaited })
    };

    quote! {
        #item

        const _: () = {
            #ownership
            #instance

            #[allow(unused_braces)]
            fn shim<'a>(
                host: &'a ::plexichat::__private::Host,
                records: &'a [::plexichat::logging::LogRecord],
            ) -> ::plexichat::__private::LogSinkFuture<'a> {
                ::plexichat::__private::Box::pin(async move {
                    #records_check
                    let this = INSTANCE(host, ::core::env!("CARGO_CRATE_NAME"))?;
                    #report
                })
            }

            ::plexichat::__private::register!(
                PLEXICHAT_LOG_SINKS,
                ::plexichat::__private::LogSinkDescriptor,
                ::plexichat::__private::LogSinkDescriptor {
                    name: #name,
                    crate_name: #crate_name,
                    location: #location,
                    plugins: &[#(#plugins),*],
                    level: ::plexichat::logging::LogLevel::#level,
                    capacity: #capacity,
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
    fn keys_are_checked_together() {
        let function = quote!(
            async fn write(
                context: &PluginContext<P>,
                records: &[LogRecord],
            ) -> Result<(), String> {
            }
        );
        assert_eq!(errors(quote!(), function.clone()), "");
        assert_eq!(
            errors(
                quote!(
                    plugins = ["channels", "plexichat"],
                    level = "warn",
                    capacity = 10
                ),
                function.clone()
            ),
            ""
        );
        let text = errors(
            quote!(
                plugins = ["Channels"],
                level = "wran",
                capacity = 0,
                colour = 1
            ),
            function,
        );
        assert!(text.contains("not a plugin name"), "{text}");
        assert!(text.contains("did you mean `warn`"), "{text}");
        assert!(text.contains("`capacity`"), "{text}");
        assert!(text.contains("unknown key `colour`"), "{text}");
    }

    #[test]
    fn the_signature_takes_a_plugin_and_the_records() {
        let text = errors(
            quote!(),
            quote!(
                fn write(records: &[LogRecord]) {}
            ),
        );
        assert!(text.contains("this one takes 1"), "{text}");
        let text = errors(
            quote!(),
            quote!(
                fn write<T>(context: PluginContext<P>, records: &[LogRecord]) {}
            ),
        );
        assert!(text.contains("cannot be generic"), "{text}");
        assert!(text.contains("shared reference"), "{text}");
    }
}
