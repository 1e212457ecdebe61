#[gears::register]
fn nothing() {}

fn main() {}
