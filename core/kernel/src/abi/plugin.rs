//! What a plugin is: the [`Plugin`] trait that `#[plugin]` implements, and the static
//! [`PluginDescriptor`] (the seed's manifest) that it registers.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A type declared with `#[plugin(...)]`.
///
/// Implemented only by the macro. Naming a type in another plugin's `dependencies` requires
/// this trait, which is how a misspelt or non-plugin dependency becomes a compile error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a PlexiChat plugin",
    label = "not declared with `#[plugin]`",
    note = "only a type annotated with `#[plexichat::plugin(...)]` can be named as a plugin: in `dependencies = [...]`, in `PluginState<_>`, or as the first of an event handler's two arguments"
)]
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's unique name, as in its manifest.
    const NAME: &'static str;
}

/// The sixteen plugin kinds of the PlexiChat manifest (`"type"` in `plugin.json`); the
/// variants, `ALL` and `as_str` come from `plexichat_rules::PLUGIN_KINDS`, the table
/// `#[plugin(type = ...)]` checks against.
#[plexichat_macros::__variants(PLUGIN_KINDS)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PluginType {}

/// A plugin declared with `#[plugin(config = T)]`; `T` is its `[plugins.<name>]` section.
pub trait Configurable: Plugin {
    /// The configuration type.
    type Config: Send + Sync + 'static;
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use crate::abi::assets::EmbeddedFile;

/// A web page a plugin contributes (`ui_pages` in the manifest).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UiPage {
    /// Short identifier, unique within the plugin.
    pub name: &'static str,
    /// Path of the page's files, relative to the plugin crate.
    pub path: &'static str,
    /// Title shown in navigation.
    pub title: &'static str,
    /// One-line description.
    pub description: &'static str,
}

/// The static manifest of one compiled-in plugin, written by `#[plugin]`.
///
/// Every field is `'static` so that the descriptor can live in a link section; nothing here
/// runs code until the runtime calls [`PluginDescriptor::construct`].
#[derive(Clone, Copy, Serialize)]
pub struct PluginDescriptor {
    /// Unique name (`my_awesome_plugin`).
    pub name: &'static str,
    /// Semantic version; defaults to the crate version.
    pub version: &'static str,
    /// One paragraph; defaults to the type's doc comment.
    pub description: &'static str,
    /// Author, free text.
    pub author: &'static str,
    /// Manifest `type`.
    #[serde(rename = "type")]
    pub kind: PluginType,
    /// Names of the plugins this one needs; each was checked to be a plugin at compile time.
    pub dependencies: &'static [&'static str],
    /// Permissions requested, e.g. `plugin:read`.
    pub permissions: &'static [&'static str],
    /// Plugin API version the plugin was written against.
    pub api_version: &'static str,
    /// Oldest PlexiChat version the plugin supports.
    pub min_plexichat_version: &'static str,
    /// Marketplace category.
    pub category: &'static str,
    /// Free-form tags.
    pub tags: &'static [&'static str],
    /// Project home page.
    pub homepage: Option<&'static str>,
    /// Source repository.
    pub repository: Option<&'static str>,
    /// SPDX license expression.
    pub license: Option<&'static str>,
    /// Icon name.
    pub icon: Option<&'static str>,
    /// Web pages the plugin contributes.
    pub ui_pages: &'static [UiPage],
    /// Every file of the UI pages' folders and of `ui/static/`, by crate-relative path.
    #[serde(skip)]
    pub ui_files: &'static [crate::abi::assets::EmbeddedFile],
    /// Every file of the plugin's docs folder (`docs/` unless `docs = "..."`), by path
    /// relative to it.
    #[serde(skip)]
    pub docs: &'static [crate::abi::assets::EmbeddedFile],
    /// Event names the plugin emits for webhooks.
    pub webhooks: &'static [&'static str],
    /// Whether the plugin starts with the server.
    pub auto_start: bool,
    /// Where the plugin's routes are mounted (`/api/v1/<name>` unless set).
    pub prefix: &'static str,
    /// The plugin's configuration type, from `#[plugin(config = T)]`.
    #[serde(skip)]
    pub config: Option<&'static crate::abi::config_spec::ConfigSpec>,
    /// The plugin's hooks, from `#[plugin(lifecycle = true)]`.
    #[serde(skip)]
    pub lifecycle: Option<&'static crate::abi::hooks::LifecycleHooks>,
    /// The plugin's backup handlers, from `#[plugin(backup = true)]`; listed as whether it
    /// has them.
    #[serde(rename = "backup_handlers", serialize_with = "has_some")]
    pub backup: Option<&'static crate::abi::backup::BackupHooks>,
    /// Its SQL migrations, from `#[plugin(migrations = "...")]`, in version order.
    pub migrations: &'static [crate::abi::migration::Migration],
    /// The crate that declared the plugin; routes and handlers of that crate belong to it.
    #[serde(skip)]
    pub crate_name: &'static str,
    /// Rust path of the plugin type, for messages.
    #[serde(skip)]
    pub type_name: &'static str,
    /// `TypeId` of the plugin type, so extractors can find the instance.
    #[serde(skip)]
    pub type_id: fn() -> TypeId,
    /// Creates the plugin's state when the runtime starts.
    #[serde(skip)]
    pub construct: fn() -> Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for PluginDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginDescriptor")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("type", &self.kind)
            .field("crate_name", &self.crate_name)
            .field("dependencies", &self.dependencies)
            .finish_non_exhaustive()
    }
}

/// Serialises an optional table of function pointers as whether it is there.
fn has_some<T, S: serde::Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(value.is_some())
}
