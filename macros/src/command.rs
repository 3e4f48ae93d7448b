//! `#[plexichat::command]`: a plugin CLI command registered into `PLEXICHAT_COMMANDS`.
//!
//! Parse (arguments and the function) → validate ([`Command`]) → expand ([`generate`]).
//! Nothing else names a command, so on error the function is emitted unchanged with the
//! errors.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, Arg, Check, Errors};

const SIGNATURE: &str = "`async fn name(context: CommandContext<MyPlugin>, args: MyArgs) -> Result<(), BoxError>` (the arguments struct is optional)";

/// The keys `#[command]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("category", |keys, arg, errors| {
        keys.category = errors.ok(word(arg, "category"));
    }),
    ("name", |keys, arg, errors| {
        keys.name = errors.ok(word(arg, "name"));
    }),
    ("since", |keys, arg, errors| {
        keys.since = errors.ok(args::string(arg).and_then(|since| {
            let text = since.value();
            let parts: Vec<&str> = text.split('.').collect();
            if parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
                Ok(since)
            } else {
                Err(syn::Error::new_spanned(
                    &since,
                    format!("`since` is the plugin version that added the command, like `\"1.2.0\"` (got `{text}`)"),
                ))
            }
        }));
    }),
    ("admin_only", |keys, arg, errors| {
        keys.admin_only = errors.ok(args::boolean(arg)).unwrap_or(false);
    }),
    ("dangerous", |keys, arg, errors| {
        keys.dangerous = errors.ok(args::boolean(arg)).unwrap_or(false);
    }),
    ("requires_auth", |keys, arg, errors| {
        keys.requires_auth = errors.ok(args::boolean(arg)).unwrap_or(false);
    }),
    ("server", |keys, arg, errors| {
        keys.server = errors.ok(args::boolean(arg)).unwrap_or(false);
    }),
    ("starts_plugins", |keys, arg, errors| {
        keys.starts_plugins = errors.ok(args::boolean(arg)).unwrap_or(false);
    }),
];

#[derive(Default)]
struct Keys {
    category: Option<syn::LitStr>,
    name: Option<syn::LitStr>,
    since: Option<syn::LitStr>,
    admin_only: bool,
    dangerous: bool,
    requires_auth: bool,
    server: bool,
    starts_plugins: bool,
}

/// The validate step's output.
struct Command {
    keys: Keys,
    function: syn::ItemFn,
    /// The doc comment: the first paragraph, and the whole.
    about: String,
    long_about: String,
    /// `P` of the `CommandContext<P>` argument.
    plugin: syn::Type,
    /// Whether the context is the first argument.
    context_first: bool,
    /// The arguments struct, if the command takes one.
    arguments: Option<syn::Type>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[command]` must be placed on an `async fn`")
    });
    match validate(args::parse_args(args), function) {
        Ok(command) => generate(&item, &command),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

/// A category or command name: lower-case letters, digits, `-` and `_`, starting with a
/// letter, so that it is one word on a command line.
fn word(arg: &Arg, what: &str) -> syn::Result<syn::LitStr> {
    let lit = args::string(arg)?;
    let text = lit.value();
    let valid = text.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && text.len() <= 64;
    if valid {
        Ok(lit)
    } else {
        Err(syn::Error::new_spanned(
            &lit,
            format!(
                "{what} `{text}` must be one word of lower-case letters, digits, `-` and `_`, starting with a letter (at most 64), e.g. `\"dev\"`"
            ),
        ))
    }
}

fn validate(
    args: syn::Result<Vec<Arg>>,
    function: syn::Result<syn::ItemFn>,
) -> syn::Result<Command> {
    let keys = args.and_then(|args| {
        let (mut keys, mut errors) = (Keys::default(), Errors::default());
        args::apply(&args, KEYS, "`#[command]`", &mut keys, &mut errors);
        errors.into_result(keys)
    });
    let function = function.and_then(|function| {
        let mut errors = Errors::default();
        let sig = &function.sig;
        if sig.asyncness.is_none() {
            let (fn_token, ident) = (&sig.fn_token, &sig.ident);
            errors.spanned(
                quote!(#fn_token #ident),
                format!("a `#[command]` must be an `async fn`: {SIGNATURE}"),
            );
        }
        if !sig.generics.params.is_empty() {
            errors.spanned(&sig.generics, "a `#[command]` cannot be generic");
        }
        if let Some(receiver) = sig.receiver() {
            errors.spanned(
                receiver,
                format!("a `#[command]` is a free function: {SIGNATURE}"),
            );
        }
        let (about, long_about) = docs(&function.attrs);
        if about.is_empty() {
            errors.spanned(
                &sig.ident,
                "a `#[command]` needs a doc comment: its first paragraph is the one-line help, the whole is `--help`",
            );
        }
        let types: Vec<&syn::Type> = args::argument_types(sig).collect();
        let context = types
            .iter()
            .position(|ty| args::wrapped_type(ty, "CommandContext").is_some());
        let shape = match (context, types.len()) {
            (Some(index), 1 | 2) => Some(index),
            _ => {
                errors.spanned(
                    &sig.inputs,
                    format!("a `#[command]` takes its context and, optionally, a struct of arguments: {SIGNATURE}"),
                );
                None
            }
        };
        errors.into_result(())?;
        let index = shape.unwrap_or(0);
        let plugin = args::wrapped_type(types[index], "CommandContext").cloned().ok_or_else(|| {
            syn::Error::new_spanned(&sig.inputs, SIGNATURE)
        })?;
        let arguments = types
            .iter()
            .enumerate()
            .find(|(i, _)| *i != index)
            .map(|(_, ty)| (*ty).clone());
        Ok(Command {
            keys: Keys::default(),
            about,
            long_about,
            plugin,
            context_first: index == 0,
            arguments,
            function,
        })
    });
    args::both(keys, function).map(|(keys, command)| Command { keys, ..command })
}

/// The doc comment's first paragraph (joined into one line) and its whole text.
pub(crate) fn docs(attrs: &[syn::Attribute]) -> (String, String) {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(syn::MetaNameValue {
            value:
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }),
            ..
        }) = &attr.meta
        {
            let value = text.value();
            lines.push(
                value
                    .strip_prefix(' ')
                    .unwrap_or(&value)
                    .trim_end()
                    .to_string(),
            );
        }
    }
    let long = lines.join("\n").trim().to_string();
    let about = long
        .split("\n\n")
        .next()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    // One line in a listing, like clap's own: without the sentence's final period.
    let about = about.strip_suffix('.').unwrap_or(&about).to_string();
    (about, long)
}

fn generate(item: &TokenStream, command: &Command) -> TokenStream {
    let Command {
        keys,
        function,
        about,
        long_about,
        plugin,
        context_first,
        arguments,
    } = command;
    let ident = &function.sig.ident;
    let handler_name = ident.to_string();
    let name = match &keys.name {
        Some(name) => quote!(#name),
        None => {
            let text = handler_name.trim_start_matches("r#");
            quote!(#text)
        }
    };
    let category = match &keys.category {
        Some(category) => quote!(::core::option::Option::Some(#category)),
        None => quote!(::core::option::Option::None),
    };
    let since = match &keys.since {
        Some(since) => quote!(::core::option::Option::Some(#since)),
        None => quote!(::core::option::Option::None),
    };
    // Acting on a server with credentials is acting on a server.
    let (admin_only, dangerous, requires_auth, server, starts_plugins) = (
        keys.admin_only,
        keys.dangerous,
        keys.requires_auth,
        keys.server || keys.requires_auth,
        keys.starts_plugins,
    );
    let location = args::location(ident.span());
    let crate_name = args::crate_name();
    let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
    let args_type = match arguments {
        Some(ty) => quote!(#ty),
        None => quote!(::plexichat::__private::NoArgs),
    };
    // Each type is checked by one item spanned at it, so that a wrong one is one error where
    // the fix goes: the arguments by `args_shape` (the only place that needs them to be
    // clap's), the return type by the call to `run_command`.
    let args_span = arguments.as_ref().map_or(ident.span(), |ty| ty.span());
    let shape = quote_spanned! {args_span=>
        const ARGS: ::plexichat::__private::ArgsShape =
            ::plexichat::__private::args_shape::<#args_type>();
    };
    let return_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let run_command = quote_spanned! {return_span=>
        ::plexichat::__private::run_command::<#plugin, #args_type, _, _>
    };
    let ownership = quote_spanned! {plugin.span()=>
        const _: () = ::plexichat::__private::owns::<#crate_id, #plugin>();
    };
    let call = match (arguments.is_some(), context_first) {
        (false, _) => quote!(|context, _: ::plexichat::__private::NoArgs| #ident(context)),
        (true, true) => quote!(#ident),
        (true, false) => quote!(|context, arguments| #ident(arguments, context)),
    };
    quote! {
        #item

        const _: () = {
            #ownership
            #shape

            fn run(
                host: ::plexichat::__private::Host,
                invocation: ::plexichat::__private::Invocation,
                matches: &::plexichat::__private::clap::ArgMatches,
            ) -> ::plexichat::__private::CommandFuture {
                #run_command(#call, ARGS.parse, host, invocation, matches)
            }

            ::plexichat::__private::register!(
                PLEXICHAT_COMMANDS,
                ::plexichat::__private::CommandDescriptor,
                ::plexichat::__private::CommandDescriptor {
                    category: #category,
                    name: #name,
                    about: #about,
                    long_about: #long_about,
                    since: #since,
                    flags: ::plexichat::__private::CommandFlags {
                        admin_only: #admin_only,
                        dangerous: #dangerous,
                        requires_auth: #requires_auth,
                        server: #server,
                        starts_plugins: #starts_plugins,
                    },
                    handler: #handler_name,
                    crate_name: #crate_name,
                    location: #location,
                    args: ARGS.augment,
                    run,
                }
            );
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doc_comment_gives_a_one_line_help_and_the_long_one() {
        let function: syn::ItemFn = syn::parse_quote! {
            /// Shows the stored
            /// statistics.
            ///
            /// Works without a server.
            ///   Indented line kept.
            async fn stats() {}
        };
        let (about, long) = docs(&function.attrs);
        assert_eq!(about, "Shows the stored statistics");
        assert_eq!(
            long,
            "Shows the stored\nstatistics.\n\nWorks without a server.\n  Indented line kept."
        );
        let bare: syn::ItemFn = syn::parse_quote! { async fn bare() {} };
        assert_eq!(docs(&bare.attrs), (String::new(), String::new()));
    }

    #[test]
    fn categories_and_names_are_one_lower_case_word() {
        let check = |text: &str| {
            let arg: Arg = syn::parse_str(&format!("category = {text:?}")).unwrap();
            word(&arg, "category").map(|lit| lit.value())
        };
        for good in ["dev", "awesome_audit", "scale-0001", "a1"] {
            assert_eq!(check(good).unwrap(), good);
        }
        for bad in [
            "",
            "Dev",
            "dev tools",
            "1dev",
            "-dev",
            "dév",
            &"x".repeat(65),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
