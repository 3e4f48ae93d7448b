//! Items core generates from `plexichat-rules`' tables, so that the macros, the kernel and
//! xtask read one list: the variants of `PluginType`, `Method` and `TestCategory`
//! (`#[__variants(TABLE)]`), and the permission marker traits (`__permissions!(Supertrait)`). Hidden: only core invokes them.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

/// `#[__variants(PLUGIN_KINDS)] pub enum PluginType {}`: fills the enum with one variant per
/// row, each with its doc comment and its written name as serde's name (the enum must derive
/// `Serialize`), and adds `ALL` (every variant, in table order) and `as_str` (the written
/// name).
pub(crate) fn variants(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand_variants(args, item) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}

fn expand_variants(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let table: Ident = syn::parse2(args)?;
    let rows: &[plexichat_rules::Variant] = match table.to_string().as_str() {
        "PLUGIN_KINDS" => &plexichat_rules::PLUGIN_KINDS,
        "METHODS" => &plexichat_rules::METHODS,
        "TEST_CATEGORIES" => &plexichat_rules::TEST_CATEGORIES,
        other => {
            return Err(syn::Error::new_spanned(
                &table,
                format!(
                    "no table `{other}` in plexichat-rules; expected PLUGIN_KINDS, METHODS or TEST_CATEGORIES"
                ),
            ));
        }
    };
    let mut item: syn::ItemEnum = syn::parse2(item)?;
    if !item.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.variants,
            "the variants come from the table: leave the enum empty",
        ));
    }
    // The serialised name is the table's too (the enums derive serde's `Serialize`), so the
    // wire, `as_str` and the macros' validation cannot drift apart.
    for row in rows {
        let ident = Ident::new(row.variant, Span::call_site());
        let (doc, name) = (row.doc, row.name);
        item.variants
            .push(syn::parse_quote!(#[doc = #doc] #[serde(rename = #name)] #ident));
    }
    let name = &item.ident;
    let count = rows.len();
    let all = rows.iter().map(|row| format_ident!("{}", row.variant));
    let arms = rows.iter().map(|row| {
        let (ident, text) = (format_ident!("{}", row.variant), row.name);
        quote!(#name::#ident => #text)
    });
    Ok(quote! {
        #item

        impl #name {
            /// Every variant, in the order of its table in `plexichat-rules`.
            pub const ALL: [#name; #count] = [#(#name::#all),*];

            /// The name as written in a manifest or an attribute.
            pub const fn as_str(self) -> &'static str {
                match self {
                    #(#arms,)*
                }
            }
        }
    })
}

/// `__permissions!(Supertrait)`: one marker trait per permission, with the compile error a
/// plugin gets for using a service it did not declare. (What each grants is read from
/// `plexichat_rules::PERMISSIONS` itself; no copy is generated.)
pub(crate) fn permissions(args: TokenStream) -> TokenStream {
    let supertrait: syn::Path = match syn::parse2(args) {
        Ok(path) => path,
        Err(error) => return error.to_compile_error(),
    };
    let traits = plexichat_rules::PERMISSIONS.iter().map(|permission| {
        let name = permission.name;
        let marker = Ident::new(permission.marker, Span::call_site());
        let doc = format!(
            "Granted by `permissions = [\"{name}\"]`: {}.",
            permission.grants
        );
        let message = format!("plugin `{{Self}}` does not declare the `{name}` permission");
        let label = format!("{} `{name}`", permission.needs);
        let note = format!("add it to the manifest: `#[plugin(permissions = [\"{name}\"])]`");
        quote! {
            #[doc = #doc]
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            pub trait #marker: #supertrait {}
        }
    });
    quote!(#(#traits)*)
}
