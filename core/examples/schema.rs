//! Prints the JSON Schemas of `Options` (the wire format) and `Output` (the result).
//!
//! Run with `cargo run -p imgest --example schema --features schema`.

fn main() {
    let schemas = serde_json::json!({
        "Options": schemars::schema_for!(imgest::Options),
        "Output": schemars::schema_for!(imgest::Output),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&schemas).expect("schemas serialize")
    );
}
