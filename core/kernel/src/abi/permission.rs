//! The permission vocabulary: each name a plugin can write in `permissions = [...]` is a
//! marker trait here that `#[plugin]` implements for the plugin type, and each service
//! accessor requires one, so using an undeclared service does not compile.
//!
//! The names are the manifest's strings; `plexichat_rules::PERMISSIONS` lists them with what
//! they grant (shown by `plexichat plugins info` and the plugin guide), and the traits here
//! are generated from that one table: `#[plugin]` refuses a name not in it, at the string,
//! listing the vocabulary, and implements the marker of each declared one.

use crate::abi::plugin::Plugin;

// One marker trait per permission, with the error a plugin gets for using a service it did
// not declare: generated from `plexichat_rules::PERMISSIONS`, the table
// `#[plugin(permissions = [...])]` checks names against and whose markers it implements.
plexichat_macros::__permissions!(Plugin);
