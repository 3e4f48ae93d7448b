use plexichat::prelude::*;

#[payload]
union Bits {
    int: u32,
    float: f32,
}

#[payload(both)]
struct Body {
    text: String,
}

fn main() {}
