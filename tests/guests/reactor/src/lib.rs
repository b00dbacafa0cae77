//! Exported functions for `WasmEntryPoint` tests.

/// Prints a greeting; the test configures `WasmEntryPoint greet`.
#[no_mangle]
pub extern "C" fn greet() {
    println!("greetings from an entry point");
}
