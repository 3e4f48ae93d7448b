//! Plugin lifecycle hooks (`init`, `ready`, `stop`): the [`Lifecycle`] trait a plugin
//! implements and the type-erased [`LifecycleHooks`] table its descriptor points at. What the
//! hooks receive, `PluginContext`, is the runtime's.
//!
//! Phases of a server, in order: configuration validated → `starting` event → `init` of each
//! plugin in dependency order (each within the phase timeout; a failure marks the plugin
//! `failed` and disables its dependents) → `startup` event → serving, with `ready` answering
//! `/ready` → `shutdown` event → `stop` of each plugin in reverse dependency order, each
//! followed by the cancellation of its tasks → `stopped` event. A plugin enabled at run time
//! gets its `init` then; one disabled at run time gets its `stop` and loses its tasks.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use crate::abi::plugin::Plugin;
// The handle every hook receives, and the opaque host the erased table builds it from.
use crate::runtime::Host;
use crate::runtime::PluginContext;

/// Any error a hook or task returns; `?` converts every `std::error::Error`, and
/// `"message".into()` makes one from text.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Lifecycle hooks of a plugin declared with `#[plugin(lifecycle = true)]`. Every method has
/// a default that does nothing, so a plugin implements only what it needs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with `lifecycle = true` but does not implement `plexichat::Lifecycle`",
    label = "add `impl plexichat::Lifecycle for {Self} {{}}` and override the hooks you need"
)]
pub trait Lifecycle: Plugin + Sized {
    /// Called when the plugin starts: at server start, or when it is enabled at run time,
    /// always after every dependency is running, and before its routes serve. An error, a
    /// panic or a timeout marks the plugin failed: its routes answer 503 and its dependents
    /// are disabled, while the rest of the server runs. Spawn background tasks here; they
    /// are cancelled when the plugin stops.
    fn init(
        &self,
        context: &PluginContext<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = context;
        async { Ok(()) }
    }

    /// Readiness: `Err(reason)` makes `GET /ready` answer 503 naming this plugin.
    fn ready(
        &self,
        context: &PluginContext<Self>,
    ) -> impl Future<Output = Result<(), BoxError>> + Send {
        let _ = context;
        async { Ok(()) }
    }

    /// Called when the plugin stops: at shutdown (dependents first), or when it, or a plugin
    /// it depends on, is disabled at run time. Its routes already answer 503; its
    /// background tasks are cancelled right after.
    fn stop(&self, context: &PluginContext<Self>) -> impl Future<Output = ()> + Send {
        let _ = context;
        async {}
    }
}

pub(crate) type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The type-erased hooks of one plugin, written by `#[plugin(lifecycle = true)]`.
pub struct LifecycleHooks {
    pub(crate) init:
        for<'a> fn(&'a (dyn Any + Send + Sync), &'a Host) -> HookFuture<'a, Result<(), String>>,
    pub(crate) ready:
        for<'a> fn(&'a (dyn Any + Send + Sync), &'a Host) -> HookFuture<'a, Result<(), String>>,
    pub(crate) stop: for<'a> fn(&'a (dyn Any + Send + Sync), &'a Host) -> HookFuture<'a, ()>,
}

impl std::fmt::Debug for LifecycleHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LifecycleHooks")
    }
}

/// Gives every `Lifecycle` type its hook table as a constant, so the macro can put a
/// `&'static` reference to it into the plugin's descriptor. It carries `Lifecycle`'s
/// message: the macro's expansion names this trait, so an unmet bound is reported against it.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is declared with `lifecycle = true` but does not implement `plexichat::Lifecycle`",
    label = "add `impl plexichat::Lifecycle for {Self} {{}}` and override the hooks you need"
)]
pub trait HooksOf {
    const HOOKS: LifecycleHooks;
}

impl<P: Lifecycle> HooksOf for P {
    const HOOKS: LifecycleHooks = LifecycleHooks {
        init: |instance, host| {
            Box::pin(async move {
                let context = PluginContext::<P>::new(host.runtime().clone());
                let context = &context;
                let plugin = downcast::<P>(instance)?;
                plugin
                    .init(context)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
        ready: |instance, host| {
            Box::pin(async move {
                let context = PluginContext::<P>::new(host.runtime().clone());
                let context = &context;
                let plugin = downcast::<P>(instance)?;
                plugin
                    .ready(context)
                    .await
                    .map_err(|error| error.to_string())
            })
        },
        stop: |instance, host| {
            Box::pin(async move {
                let context = PluginContext::<P>::new(host.runtime().clone());
                let context = &context;
                if let Ok(plugin) = downcast::<P>(instance) {
                    plugin.stop(context).await;
                }
            })
        },
    };
}

pub(crate) fn downcast<P: Plugin>(instance: &(dyn Any + Send + Sync)) -> Result<&P, String> {
    instance
        .downcast_ref::<P>()
        .ok_or_else(|| format!("plugin `{}` has an instance of another type", P::NAME))
}
