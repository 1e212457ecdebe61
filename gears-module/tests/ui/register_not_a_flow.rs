#[gears::register]
fn number() -> u64 {
    5
}

fn main() {}
