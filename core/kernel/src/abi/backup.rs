//! Plugin backup handlers: the [`Backup`] trait a plugin declared with
//! `#[plugin(backup = true)]` implements, and the type-erased [`BackupHooks`] its descriptor
//! points at. Tables, key-value entries and the data folder are archived without any
//! handler; a handler adds what lives elsewhere (state held outside the database, a
//! document in a format of the plugin's own) and is called again on restore.

use std::any::Any;
use std::future::Future;

use crate::abi::hooks::{BoxError, HookFuture, downcast};
use crate::abi::plugin::Plugin;
// The handle every handler receives, and the opaque host the erased table builds it from.
use crate::runtime::Host;
use crate::runtime::PluginContext;

/// Backup handlers of a plugin declared with `#[plugin(backup = true)]`.
///
/// `plexichat backup create` (and `POST /admin/backups`) calls [`Backup::export`] after
/// the database snapshot and stores the bytes in the archive as `handlers/<plugin>.bin`;
/// `plexichat backup restore` calls [`Backup::import`] with those bytes once the archived
/// database and folders are in place, before any server starts on them. Both may run in a
/// command with no server running: the plugin's `init` has not run, so use the context's
/// services (database, key-value store, data folder), not state built in `init`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with `backup = true` but does not implement `plexichat::Backup`",
    label = "add `impl plexichat::Backup for {Self}` with `export` and `import`"
)]
pub trait Backup: Plugin + Sized {
    /// The plugin's own part of a backup. An error (or a panic, or a time-out) fails the
    /// whole backup, naming this plugin.
    fn export(
        &self,
        context: &PluginContext<Self>,
    ) -> impl Future<Output = Result<Vec<u8>, BoxError>> + Send;

    /// Takes back what [`Backup::export`] wrote, on the restored data: the context's
    /// database, key-value store and folder are the restored ones. An error stops the
    /// restore: on SQLite nothing is changed; on PostgreSQL the tables are already
    /// committed and the restore reports itself incomplete, naming this plugin.
    fn import(
        &self,
        context: &PluginContext<Self>,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// An erased export: the plugin's instance and the host whose storage it reads.
pub(crate) type ExportFn =
    for<'a> fn(&'a (dyn Any + Send + Sync), &'a Host) -> HookFuture<'a, Result<Vec<u8>, String>>;
/// An erased import: the instance, the host on the restored data, and the exported bytes.
pub(crate) type ImportFn = for<'a> fn(
    &'a (dyn Any + Send + Sync),
    &'a Host,
    Vec<u8>,
) -> HookFuture<'a, Result<(), String>>;

/// The type-erased handlers of one plugin, written by `#[plugin(backup = true)]`.
pub struct BackupHooks {
    pub(crate) export: ExportFn,
    pub(crate) import: ImportFn,
}

impl std::fmt::Debug for BackupHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupHooks")
    }
}

/// Gives every `Backup` type its handler table as a constant, so the macro can put a
/// `&'static` reference to it into the plugin's descriptor.
/// Carries `Backup`'s message: the macro's expansion names this trait, so an unmet bound
/// is reported against it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with `backup = true` but does not implement `plexichat::Backup`",
    label = "add `impl plexichat::Backup for {Self}` with `export` and `import`"
)]
pub trait BackupHooksOf {
    const BACKUP: BackupHooks;
}

impl<P: Backup> BackupHooksOf for P {
    const BACKUP: BackupHooks = BackupHooks {
        export: |instance, host| {
            Box::pin(async move {
                let context = PluginContext::<P>::new(host.runtime().clone());
                let plugin = downcast::<P>(instance)?;
                plugin
                    .export(&context)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
        import: |instance, host, data| {
            Box::pin(async move {
                let context = PluginContext::<P>::new(host.runtime().clone());
                let plugin = downcast::<P>(instance)?;
                plugin
                    .import(&context, data)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
    };
}
