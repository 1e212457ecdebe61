use gears::prelude::*;

#[gears::register]
fn bad(n: u32) -> GearsBuilder<u64> {
    GearsBuilder::new(KeysOnlyReader::new("*")).limit(n as usize, 0).count()
}

fn main() {}
