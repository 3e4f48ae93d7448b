//! Shared parsing for `key = value` attribute arguments, and the error accumulator.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Token};

/// Collects every error of one expansion so they are all reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records the error of `result`, if any, and passes its value on.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// `value` when nothing was reported, else every error reported.
    pub(crate) fn into_result<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

/// Both values, or the errors of whichever failed, `first`'s before `second`'s.
pub(crate) fn both<A, B>(first: syn::Result<A>, second: syn::Result<B>) -> syn::Result<(A, B)> {
    match (first, second) {
        (Ok(first), Ok(second)) => Ok((first, second)),
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => Err(error),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            Err(first)
        }
    }
}

/// The user's item followed by `error`: what a macro emits when it has nothing to add.
pub(crate) fn item_and_errors(item: &TokenStream, error: &syn::Error) -> TokenStream {
    let errors = error.to_compile_error();
    quote::quote! { #item #errors }
}

/// One `key = value` pair; the key may be a keyword (`type = feature`). A key alone is a
/// flag: `vetoable` means `vetoable = true`.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) eq: Token![=],
    pub(crate) value: Value,
}

/// An argument value: an expression, a `[list]`, or a `{ key = value, ... }` object written
/// like the seed manifest's JSON objects.
pub(crate) enum Value {
    Expr(syn::Expr),
    List {
        bracket: syn::token::Bracket,
        items: Punctuated<Value, Token![,]>,
    },
    Object {
        brace: syn::token::Brace,
        fields: Punctuated<Arg, Token![,]>,
    },
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?;
        if input.is_empty() || input.peek(Token![,]) {
            let value = syn::LitBool::new(true, key.span());
            return Ok(Arg {
                eq: Token![=](key.span()),
                value: Value::Expr(syn::parse_quote!(#value)),
                key,
            });
        }
        let eq = input.parse::<Token![=]>().map_err(|_| {
            syn::Error::new(
                key.span(),
                format!("expected `{key} = <value>`, or `{key}` alone for a flag"),
            )
        })?;
        let value = input.parse()?;
        Ok(Arg { key, eq, value })
    }
}

impl Parse for Value {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(syn::token::Bracket) {
            let content;
            let bracket = syn::bracketed!(content in input);
            let items = Punctuated::parse_terminated(&content)?;
            Ok(Value::List { bracket, items })
        } else if input.peek(syn::token::Brace) {
            let content;
            let brace = syn::braced!(content in input);
            let fields = Punctuated::parse_terminated(&content)?;
            Ok(Value::Object { brace, fields })
        } else {
            input.parse().map(Value::Expr)
        }
    }
}

impl ToTokens for Arg {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.key.to_tokens(tokens);
        self.eq.to_tokens(tokens);
        self.value.to_tokens(tokens);
    }
}

impl ToTokens for Value {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Value::Expr(expr) => expr.to_tokens(tokens),
            Value::List { bracket, items } => bracket.surround(tokens, |t| items.to_tokens(t)),
            Value::Object { brace, fields } => brace.surround(tokens, |t| fields.to_tokens(t)),
        }
    }
}

/// Parses `key = value, ...`.
pub(crate) fn parse_args(tokens: TokenStream) -> syn::Result<Vec<Arg>> {
    let parser = Punctuated::<Arg, Token![,]>::parse_terminated;
    syn::parse::Parser::parse2(parser, tokens).map(|args| args.into_iter().collect())
}

/// `key = "text"`, or an error at the value.
pub(crate) fn string(arg: &Arg) -> syn::Result<syn::LitStr> {
    string_value(&arg.value, &arg.key)
}

fn string_value(value: &Value, key: &Ident) -> syn::Result<syn::LitStr> {
    match value {
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        })) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` expects a string literal, e.g. `{key} = \"...\"`"),
        )),
    }
}

/// `key = true` / `key = false`, or an error at the value.
pub(crate) fn boolean(arg: &Arg) -> syn::Result<bool> {
    match &arg.value {
        Value::Expr(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(lit),
            ..
        })) => Ok(lit.value),
        other => {
            let key = &arg.key;
            Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects `true` or `false`"),
            ))
        }
    }
}

/// `key = [elem, ...]`, or an error at the value.
pub(crate) fn list(arg: &Arg) -> syn::Result<Vec<&Value>> {
    match &arg.value {
        Value::List { items, .. } => Ok(items.iter().collect()),
        other => {
            let key = &arg.key;
            Err(syn::Error::new_spanned(
                other,
                format!("`{key}` expects a list, e.g. `{key} = [...]`"),
            ))
        }
    }
}

/// Checks each element of `key = [...]` with `element`; every failing element is reported.
pub(crate) fn each<'a, T>(
    arg: &'a Arg,
    element: impl Fn(&'a Value) -> syn::Result<T>,
) -> syn::Result<Vec<T>> {
    let mut errors = Errors::default();
    let values = list(arg)?
        .into_iter()
        .filter_map(|value| errors.ok(element(value)))
        .collect();
    errors.into_result(values)
}

/// `key = ["a", "b"]`, or errors at the offending elements.
pub(crate) fn string_list(arg: &Arg) -> syn::Result<Vec<syn::LitStr>> {
    each(arg, |value| string_element(value, &arg.key))
}

/// One element of `key = ["a", "b"]`.
pub(crate) fn string_element(value: &Value, key: &Ident) -> syn::Result<syn::LitStr> {
    string_value(value, key).map_err(|_| {
        syn::Error::new_spanned(
            value,
            format!("`{key}` expects a list of string literals, e.g. `{key} = [\"...\"]`"),
        )
    })
}

/// `key = path::to::Type` (a path without `<T as Trait>::`), or `None`.
pub(crate) fn path(value: &Value) -> Option<&syn::Path> {
    match value {
        Value::Expr(syn::Expr::Path(path)) if path.qself.is_none() => Some(&path.path),
        _ => None,
    }
}

/// Validates one key's value into the value being built; an entry of a key table.
pub(crate) type Check<T> = fn(&mut T, &Arg, &mut Errors);

/// Runs each argument through its entry in `keys`, the one table of the names `attribute`
/// accepts; unknown and repeated keys are errors at the key. Returns the keys seen.
pub(crate) fn apply<'a, T>(
    args: impl IntoIterator<Item = &'a Arg>,
    keys: &[(&str, Check<T>)],
    attribute: &str,
    target: &mut T,
    errors: &mut Errors,
) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let args: Vec<&Arg> = args.into_iter().collect();
    // The keys as written: a typo is read on as the key meant only when that key is not also
    // written correctly, or the right one would be reported as a duplicate.
    let written: Vec<String> = args.iter().map(|arg| arg.key.unraw().to_string()).collect();
    for arg in args {
        let mut name = arg.key.unraw().to_string();
        let check = match keys.iter().find(|(key, _)| *key == name) {
            Some((_, check)) => check,
            None => {
                let names: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
                let Some(meant) = plexichat_rules::closest(&name, names.iter().copied()) else {
                    let expected = match names.as_slice() {
                        [only] => format!("expected: {only}"),
                        _ => format!("expected one of: {}", names.join(", ")),
                    };
                    errors.spanned(
                        &arg.key,
                        format!("unknown key `{name}` in {attribute}; {expected}"),
                    );
                    continue;
                };
                errors.spanned(
                    &arg.key,
                    format!("unknown key `{name}` in {attribute}; did you mean `{meant}`?"),
                );
                // Read on as the key meant, so that the rest of the expansion (what the value
                // declares) holds and the typo is the only error, not the first of several.
                if written.iter().any(|key| key == meant) {
                    continue;
                }
                name = meant.to_string();
                let Some((_, check)) = keys.iter().find(|(key, _)| *key == meant) else {
                    continue;
                };
                check
            }
        };
        if seen.contains(&name) {
            errors.spanned(&arg.key, format!("duplicate key `{name}`"));
            continue;
        }
        seen.push(name);
        check(target, arg, errors);
    }
    seen
}

/// The name of the crate being compiled, which owns every registration it contains, as an
/// expression for the generated code.
///
/// Read by rustc when it compiles the expansion, not by the macro from its own process
/// environment: `env!` is tracked for incremental builds, and it works wherever the expansion
/// is compiled, whichever process ran the macro (rust-analyzer expands in its own server).
pub(crate) fn crate_name() -> TokenStream {
    quote::quote!(::core::env!("CARGO_CRATE_NAME"))
}

/// `P` when `ty` is written `Wrapper<P>` with `wrapper` as its last path segment (a macro
/// sees no types, so `plexichat::TestContext<P>` and `TestContext<P>` both match).
pub(crate) fn wrapped_type<'a>(ty: &'a syn::Type, wrapper: &str) -> Option<&'a syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    match generics.args.first() {
        Some(syn::GenericArgument::Type(inner)) if generics.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// The types of a function's arguments, in order (a receiver has none).
pub(crate) fn argument_types(sig: &syn::Signature) -> impl Iterator<Item = &syn::Type> {
    sig.inputs.iter().filter_map(|input| match input {
        syn::FnArg::Typed(typed) => Some(&*typed.ty),
        syn::FnArg::Receiver(_) => None,
    })
}

/// A number that stands for the crate being compiled, as `Crate<ID>` in generated code: FNV-1a
/// of its name. Cargo sets `CARGO_CRATE_NAME` for every rustc run (doc tests and trybuild
/// included), and every expansion in one crate reads the same value; a crate compiled without
/// cargo gets the hash of the empty name, the same in all its expansions.
pub(crate) fn crate_id() -> u64 {
    let name = std::env::var("CARGO_CRATE_NAME").unwrap_or_default();
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `::core::concat!(file!(), ":", line!())` at the given span, for messages at run time.
pub(crate) fn location(span: Span) -> TokenStream {
    quote::quote_spanned! {span=>
        ::core::concat!(::core::file!(), ":", ::core::line!())
    }
}

/// Checks a dotted lowercase name such as `awesome.action.completed`.
pub(crate) fn is_dotted_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}
