//! Plugins that vouch for a bearer token as an admin's: how a person who is an admin in a
//! plugin's own terms (an `accounts` user with the `admin` role) gets the admin API with
//! their own session, without core knowing what an account is. Vouching needs the `admin:api`
//! permission; the admin API asks the vouchers of running plugins only, and only about a
//! token that is not the admin token.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use crate::abi::permission;
use crate::abi::plugin::Plugin;
use crate::runtime::state::{PluginStatus, Slot};
use crate::runtime::{PluginContext, Runtime};

type Verdict = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
type Voucher = Arc<dyn Fn(String) -> Verdict + Send + Sync>;

/// A plugin's voucher, with its state: only a running plugin is asked.
#[derive(Clone)]
struct Entry {
    plugin: &'static str,
    slot: Option<Arc<Slot>>,
    voucher: Voucher,
}

/// The runtime's vouchers, one per plugin (registering again replaces its own).
#[derive(Default)]
pub struct AdminVouchers(RwLock<Vec<Entry>>);

impl std::fmt::Debug for AdminVouchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plugins: Vec<&str> = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|entry| entry.plugin)
            .collect();
        f.debug_tuple("AdminVouchers").field(&plugins).finish()
    }
}

/// Who a voucher says a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The plugin that vouched.
    pub plugin: &'static str,
    /// The admin, in that plugin's words (a username).
    pub who: String,
}

impl<P: Plugin> PluginContext<P> {
    /// Vouches for admins: the admin API (and every route taking `Admin`) asks `vouch` about
    /// a bearer token that is not the admin token, and admits the request when it answers
    /// `Some(name)` (logged as that name's admin action). `vouch` must answer `None` for
    /// anything but a live credential of an admin. Needs the `admin:api` permission.
    pub fn vouch_for_admins<F, Fut>(&self, vouch: F)
    where
        P: permission::AdminApi,
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        let entry = Entry {
            plugin: P::NAME,
            slot: self
                .runtime()
                .entry(P::NAME)
                .map(|entry| Arc::clone(&entry.slot)),
            voucher: Arc::new(move |token| Box::pin(vouch(token))),
        };
        let vouchers = self.runtime().extension(AdminVouchers::default);
        let mut list = vouchers.0.write().unwrap_or_else(PoisonError::into_inner);
        list.retain(|existing| existing.plugin != P::NAME);
        list.push(entry);
    }
}

impl AdminVouchers {
    /// Who a running plugin's voucher says `token` belongs to, if any says it is an admin's.
    pub async fn vouch(&self, token: &str) -> Option<Vouched> {
        let entries: Vec<Entry> = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for entry in entries {
            let running = entry
                .slot
                .as_ref()
                .is_some_and(|slot| slot.status() == PluginStatus::Running);
            if !running {
                continue;
            }
            if let Some(who) = (entry.voucher)(token.to_string()).await {
                return Some(Vouched {
                    plugin: entry.plugin,
                    who,
                });
            }
        }
        None
    }
}

impl Runtime {
    /// The runtime's admin vouchers, which the admin API asks.
    pub fn admin_vouchers(&self) -> Arc<AdminVouchers> {
        self.extension(AdminVouchers::default)
    }
}
