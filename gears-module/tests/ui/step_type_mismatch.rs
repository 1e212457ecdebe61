use gears::prelude::*;

fn main() {
    // `count()` yields u64 records; this step expects Strings.
    let _ = GearsBuilder::new(KeysOnlyReader::new("*"))
        .count()
        .map(|s: String| s.len());
}
