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

    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// The user's item followed by the errors, or `None` when there are none.
    pub(crate) fn finish(self, item: &TokenStream) -> Option<TokenStream> {
        self.0.map(|error| {
            let errors = error.to_compile_error();
            quote::quote! { #item #errors }
        })
    }
}

/// One `key = value` pair; the key may be a keyword (`type = feature`).
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
        let eq = input
            .parse::<Token![=]>()
            .map_err(|_| syn::Error::new(key.span(), format!("expected `{key} = <value>`")))?;
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

/// `"text"` or an error at the value.
pub(crate) fn string(value: &Value, key: &Ident, errors: &mut Errors) -> Option<syn::LitStr> {
    if let Value::Expr(syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(lit),
        ..
    })) = value
    {
        Some(lit.clone())
    } else {
        errors.spanned(
            value,
            format!("`{key}` expects a string literal, e.g. `{key} = \"...\"`"),
        );
        None
    }
}

/// `true` / `false` or an error at the value.
pub(crate) fn boolean(value: &Value, key: &Ident, errors: &mut Errors) -> Option<bool> {
    if let Value::Expr(syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Bool(lit),
        ..
    })) = value
    {
        Some(lit.value)
    } else {
        errors.spanned(value, format!("`{key}` expects `true` or `false`"));
        None
    }
}

/// `[elem, ...]` or an error at the value.
pub(crate) fn list<'a>(
    value: &'a Value,
    key: &Ident,
    errors: &mut Errors,
) -> Option<Vec<&'a Value>> {
    if let Value::List { items, .. } = value {
        Some(items.iter().collect())
    } else {
        errors.spanned(
            value,
            format!("`{key}` expects a list, e.g. `{key} = [...]`"),
        );
        None
    }
}

/// `["a", "b"]` or errors at the offending elements.
pub(crate) fn string_list(
    value: &Value,
    key: &Ident,
    errors: &mut Errors,
) -> Option<Vec<syn::LitStr>> {
    let elements = list(value, key, errors)?;
    let mut strings = Vec::with_capacity(elements.len());
    for element in elements {
        strings.push(string(element, key, errors)?);
    }
    Some(strings)
}

/// Records `key` as seen; a second occurrence is an error at the second key.
pub(crate) fn first_time(seen: &mut Vec<String>, key: &Ident, errors: &mut Errors) -> bool {
    let name = key.unraw().to_string();
    if seen.contains(&name) {
        errors.spanned(key, format!("duplicate key `{name}`"));
        false
    } else {
        seen.push(name);
        true
    }
}

/// The name of the crate being compiled, which owns every registration it contains.
///
/// Cargo sets `CARGO_CRATE_NAME` for each rustc invocation and proc macros run inside rustc.
pub(crate) fn crate_name(errors: &mut Errors) -> String {
    std::env::var("CARGO_CRATE_NAME").unwrap_or_else(|_| {
        errors.at(
            Span::call_site(),
            "plexichat macros need cargo: CARGO_CRATE_NAME is not set",
        );
        String::new()
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
