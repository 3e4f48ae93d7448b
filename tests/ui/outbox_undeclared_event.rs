//! Writing an event to the outbox that the manifest's `webhooks` does not list.

use plexichat::prelude::*;

#[plugin]
#[derive(Default)]
struct Shop;

#[event(name = "shop.order.paid")]
struct OrderPaid {
    order: u64,
}

async fn paid(context: PluginContext<Shop>) {
    let _ = context.outbox().emit(&OrderPaid { order: 1 }).await;
}

fn main() {}
