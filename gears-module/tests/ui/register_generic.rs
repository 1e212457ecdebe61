use gears::prelude::*;

#[gears::register]
fn generic<T: Record>() -> GearsBuilder<u64> {
    GearsBuilder::new(KeysOnlyReader::new("*")).count()
}

fn main() {}
