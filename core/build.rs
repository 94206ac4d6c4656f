//! Compiles the JPEG decoder's C side (`csrc/jpeg.c`) against the libjpeg headers of
//! `mozjpeg-sys`, which builds and links the library itself. For WebAssembly, setjmp/longjmp are
//! lowered onto WebAssembly exceptions and `csrc/sjlj_wasm.c` supplies their runtime.

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    let include = std::env::var_os("DEP_JPEG_INCLUDE").expect("mozjpeg-sys gives its include path");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "wasm32");
    let mut build = cc::Build::new();
    build
        .file("csrc/jpeg.c")
        .warnings(true)
        .extra_warnings(true);
    for dir in std::env::split_paths(&include) {
        build.include(dir);
    }
    if wasm {
        build
            .file("csrc/sjlj_wasm.c")
            .file("csrc/jpeg_unused.c")
            .flag("-mexception-handling")
            .flag("-mllvm")
            .flag("-wasm-enable-sjlj");
    }
    build.compile("imgest_jpeg");
}
