//! A webhook written as the event's name instead of its type.

use plexichat::prelude::*;

#[plugin(webhooks = ["shop.order.paid"])]
#[derive(Default)]
struct Shop;

#[event(name = "shop.order.paid")]
struct OrderPaid {
    order: u64,
}

fn main() {}
