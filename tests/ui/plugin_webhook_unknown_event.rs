//! A webhook naming an event type that does not exist (a typo), and a type that is not an
//! event.

use plexichat::prelude::*;

#[plugin(webhooks = [OrderPayed, Receipt])]
#[derive(Default)]
struct Shop;

#[event(name = "shop.order.paid")]
struct OrderPaid {
    order: u64,
}

struct Receipt;

fn main() {}
