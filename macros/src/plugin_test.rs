//! `#[plugin_test]`: a test of a plugin that ships inside the binary, registered into
//! `PLEXICHAT_PLUGIN_TESTS`.
//!
//! Parse (arguments and the function) → validate ([`Test`]) → expand ([`generate`]).
//! Nothing else names a test, so on error the function is emitted unchanged with the errors.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::{self, Arg, Check, Errors, Value};

const SIGNATURE: &str = "a plugin test is `fn name(context: &TestContext<MyPlugin>) -> Result<(), E>` or `fn name() -> Result<(), E>`, sync or async";

use plexichat_rules::TEST_CATEGORIES;

/// The longest time limit a test may declare: a day.
const MAX_TIMEOUT_MS: u128 = 24 * 60 * 60 * 1000;
/// The most retries a test may declare.
const MAX_RETRIES: u32 = 10;

/// The keys `#[plugin_test]` accepts, each with the step that validates its value.
const KEYS: &[(&str, Check<Keys>)] = &[
    ("timeout", |keys, arg, errors| {
        keys.timeout_ms = errors.ok(timeout(arg));
    }),
    ("retries", |keys, arg, errors| {
        keys.retries = errors.ok(retries(arg));
    }),
    ("tags", |keys, arg, errors| {
        keys.tags = errors.ok(args::each(arg, tag)).unwrap_or_default();
    }),
    ("category", |keys, arg, errors| {
        keys.category = errors.ok(category(arg));
    }),
];

#[derive(Default)]
struct Keys {
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    tags: Vec<syn::LitStr>,
    /// The `TestCategory` variant.
    category: Option<syn::Ident>,
}

/// The validate step's output.
struct Test {
    keys: Keys,
    function: syn::ItemFn,
    /// `P` of the `&TestContext<P>` argument, when it takes one.
    plugin: Option<syn::Type>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse2::<syn::ItemFn>(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[plugin_test]` must be placed on a function")
    });
    match validate(args::parse_args(args), function) {
        Ok(test) => generate(&item, &test),
        Err(error) => args::item_and_errors(&item, &error),
    }
}

fn validate(args: syn::Result<Vec<Arg>>, function: syn::Result<syn::ItemFn>) -> syn::Result<Test> {
    let keys = args.and_then(|args| {
        let mut errors = Errors::default();
        let mut keys = Keys::default();
        args::apply(&args, KEYS, "`#[plugin_test]`", &mut keys, &mut errors);
        errors.into_result(keys)
    });
    let function = function.and_then(|function| {
        let plugin = signature(&function.sig)?;
        Ok((function, plugin))
    });
    args::both(keys, function).map(|(keys, (function, plugin))| Test {
        keys,
        function,
        plugin,
    })
}

/// `timeout = "30s"`: a whole number with a unit (`ms`, `s`, `m`, `h`), more than zero and at
/// most a day.
fn timeout(arg: &Arg) -> syn::Result<u64> {
    let wrong = |span: &dyn quote::ToTokens, why: &str| {
        syn::Error::new_spanned(
            span,
            format!(
                "{why}; write the time limit with its unit, like `timeout = \"30s\"` (units: ms, s, m, h)"
            ),
        )
    };
    let literal = match &arg.value {
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(literal),
            ..
        })) => literal.clone(),
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(number),
            ..
        })) => return Err(wrong(number, "a bare number has no unit")),
        other => return Err(wrong(other, "`timeout` expects a string")),
    };
    let text = literal.value();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let scale: u128 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        _ => return Err(wrong(&literal, &format!("`{text}` is not a duration"))),
    };
    let Ok(number) = number.parse::<u128>() else {
        return Err(wrong(&literal, &format!("`{text}` is not a duration")));
    };
    let millis = number.saturating_mul(scale);
    if millis == 0 {
        return Err(wrong(&literal, "a time limit of zero would fail every run"));
    }
    if millis > MAX_TIMEOUT_MS {
        return Err(wrong(&literal, "a time limit is at most a day (`24h`)"));
    }
    Ok(u64::try_from(millis).expect("at most a day in milliseconds"))
}

/// `retries = 2`: how many times a failure is tried again, at most [`MAX_RETRIES`].
fn retries(arg: &Arg) -> syn::Result<u32> {
    let message = format!(
        "`retries` is how many times a failing test is tried again: a number from 0 to {MAX_RETRIES}, like `retries = 2`"
    );
    match &arg.value {
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(number),
            ..
        })) => match number.base10_parse::<u32>() {
            Ok(count) if count <= MAX_RETRIES => Ok(count),
            _ => Err(syn::Error::new_spanned(number, message)),
        },
        other => Err(syn::Error::new_spanned(other, message)),
    }
}

/// One element of `tags = ["smoke", "slow"]`: lowercase letters, digits, `_` and `-`.
fn tag(value: &Value) -> syn::Result<syn::LitStr> {
    let key = format_ident!("tags");
    let literal = args::string_element(value, &key)?;
    let text = literal.value();
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(literal)
    } else {
        Err(syn::Error::new_spanned(
            &literal,
            format!("tag `{text}` must be lowercase letters, digits, `_` or `-`"),
        ))
    }
}

/// `category = security`: one of the seed's categories.
fn category(arg: &Arg) -> syn::Result<syn::Ident> {
    let names: Vec<&str> = TEST_CATEGORIES.iter().map(|row| row.name).collect();
    let expected = format!("expected one of: {}", names.join(", "));
    let Some(path) = args::path(&arg.value).and_then(syn::Path::get_ident) else {
        return Err(syn::Error::new_spanned(
            &arg.value,
            format!("write the category as a word, like `category = security`; {expected}"),
        ));
    };
    let written = path.to_string();
    TEST_CATEGORIES
        .iter()
        .find(|row| row.name == written)
        .map(|row| syn::Ident::new(row.variant, path.span()))
        .ok_or_else(|| {
            syn::Error::new_spanned(path, format!("unknown category `{written}`; {expected}"))
        })
}

/// `P` of the one `&TestContext<P>` argument, if there is one.
fn signature(sig: &syn::Signature) -> syn::Result<Option<syn::Type>> {
    let mut errors = Errors::default();
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, "a plugin test cannot be generic");
    }
    let plugin = match sig.inputs.len() {
        0 => None,
        1 => match &sig.inputs[0] {
            syn::FnArg::Typed(typed) => match &*typed.ty {
                syn::Type::Reference(reference) if reference.mutability.is_none() => {
                    match args::wrapped_type(&reference.elem, "TestContext") {
                        Some(plugin) => Some(plugin.clone()),
                        None => {
                            errors.spanned(&reference.elem, SIGNATURE);
                            None
                        }
                    }
                }
                other => {
                    errors.spanned(
                        other,
                        format!("take the context by shared reference: {SIGNATURE}"),
                    );
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
                format!("{SIGNATURE}; this one takes {count} arguments"),
            );
            None
        }
    };
    errors.into_result(plugin)
}

fn generate(item: &TokenStream, test: &Test) -> TokenStream {
    let Test {
        keys,
        function,
        plugin,
    } = test;
    let ident = &function.sig.ident;
    let name = ident.to_string();
    let location = args::location(ident.span());
    let crate_name = args::crate_name();
    let (_, doc) = crate::command::docs(&function.attrs);
    let category = keys
        .category
        .clone()
        .unwrap_or_else(|| format_ident!("Functionality"));
    let timeout = match keys.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let retries = match keys.retries {
        Some(count) => quote!(::core::option::Option::Some(#count)),
        None => quote!(::core::option::Option::None),
    };
    let tags = &keys.tags;

    // A test of a context is its own crate's plugin's only, like a route's context.
    let (context, call, ownership) = match plugin {
        Some(plugin) => {
            let crate_id = proc_macro2::Literal::u64_unsuffixed(args::crate_id());
            (
                quote_spanned! {plugin.span()=>
                    let context = ::plexichat::__private::TestContext::<#plugin>::__new(env);
                },
                quote!(#ident(&context)),
                quote_spanned! {plugin.span()=>
                    const _: () = ::plexichat::__private::tests_own::<#crate_id, #plugin>();
                },
            )
        }
        None => (quote!(let _ = env;), quote!(#ident()), quote!()),
    };
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => ident.span(),
    };
    let (shim, body) = if function.sig.asyncness.is_some() {
        let report = quote_spanned! {output_span=>
            ::plexichat::__private::TestOutcome::into_result({ #call.await })
        };
        (
            quote! {
                #[allow(unused_braces)]
                fn shim(env: ::plexichat::__private::TestEnv) -> ::plexichat::__private::TestFuture {
                    ::plexichat::__private::Box::pin(async move {
                        #context
                        #report
                    })
                }
            },
            quote!(::plexichat::__private::TestBody::Async(shim)),
        )
    } else {
        let report = quote_spanned! {output_span=>
            ::plexichat::__private::TestOutcome::into_result({ #call })
        };
        (
            quote! {
                #[allow(unused_braces)]
                fn shim(
                    env: ::plexichat::__private::TestEnv,
                ) -> ::plexichat::__private::Result<(), ::plexichat::__private::String> {
                    #context
                    #report
                }
            },
            quote!(::plexichat::__private::TestBody::Blocking(shim)),
        )
    };

    quote! {
        #item

        const _: () = {
            #ownership

            #shim

            ::plexichat::__private::register!(
                PLEXICHAT_PLUGIN_TESTS,
                ::plexichat::__private::PluginTestDescriptor,
                ::plexichat::__private::PluginTestDescriptor {
                    name: #name,
                    crate_name: #crate_name,
                    location: #location,
                    doc: #doc,
                    category: ::plexichat::__private::TestCategory::#category,
                    timeout_ms: #timeout,
                    retries: #retries,
                    tags: &[#(#tags),*],
                    body: #body,
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

    fn good() -> TokenStream {
        quote!(
            async fn works(context: &TestContext<P>) -> Result<(), String> {}
        )
    }

    #[test]
    fn keys_are_checked_each_at_its_value() {
        assert_eq!(
            errors(
                quote!(
                    timeout = "1500ms",
                    retries = 2,
                    tags = ["smoke", "db-1"],
                    category = user_experience
                ),
                good()
            ),
            ""
        );
        assert_eq!(errors(quote!(), good()), "");
        assert!(errors(quote!(timeout = 5), good()).contains("a bare number has no unit"));
        assert!(errors(quote!(timeout = "5 weeks"), good()).contains("not a duration"));
        assert!(errors(quote!(timeout = "0s"), good()).contains("zero"));
        assert!(errors(quote!(timeout = "25h"), good()).contains("at most a day"));
        assert!(errors(quote!(retries = 11), good()).contains("from 0 to 10"));
        assert!(errors(quote!(tags = ["Smoke"]), good()).contains("lowercase"));
        assert!(errors(quote!(category = speed), good()).contains("unknown category `speed`"));
        assert!(errors(quote!(priority = high), good()).contains("unknown key `priority`"));
    }

    #[test]
    fn every_signature_mistake_is_reported_at_once() {
        let text = errors(
            quote!(timeout = 5),
            quote!(
                fn broken<T>(a: &PluginContext<P>) {}
            ),
        );
        assert!(text.contains("no unit"), "{text}");
        assert!(text.contains("cannot be generic"), "{text}");
        assert!(text.contains("&TestContext<MyPlugin>"), "{text}");
        let owned = errors(
            quote!(),
            quote!(
                fn f(context: TestContext<P>) {}
            ),
        );
        assert!(owned.contains("shared reference"), "{owned}");
        let two = errors(
            quote!(),
            quote!(
                fn f(a: &TestContext<P>, b: u8) {}
            ),
        );
        assert!(two.contains("takes 2 arguments"), "{two}");
    }
}
