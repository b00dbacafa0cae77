//! The smallest content handler: whatever it prints is the response body.
fn main() {
    println!("Hello from WebAssembly!");
}
