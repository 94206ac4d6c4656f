//! Compiles the C code of the build:
//! - the JPEG decoder's C side (`csrc/jpeg.c`) against the libjpeg headers of `mozjpeg-sys`,
//!   which builds and links the library itself. For WebAssembly, setjmp/longjmp are lowered onto
//!   WebAssembly exceptions and `csrc/sjlj_wasm.c` supplies their runtime;
//! - for WebAssembly with AVIF input, dav1d (the AV1 decoder; native builds use rav1d, its Rust
//!   port, which does not build for wasm32-unknown-unknown) from the source folder
//!   `IMGEST_DAV1D_SRC` names (`scripts/dav1d-source.sh` fetches it), with `csrc/av1.c` in front.
//!
//! It also tells whether libjpeg-turbo was built with its SIMD code (cfg `jpeg_simd`, read by
//! `imgest::jpeg_simd()`), and warns when a native build is without it.

use std::path::{Path, PathBuf};

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
    jpeg_simd(&include, wasm);
    if wasm && std::env::var_os("CARGO_FEATURE_AVIF_INPUT").is_some() {
        dav1d();
    }
}

/// Sets cfg `jpeg_simd` when the libjpeg-turbo that `mozjpeg-sys` built has its SIMD code (its
/// `jconfig.h` defines `WITH_SIMD`). On x86 that code is assembled by `nasm`, and without it
/// `mozjpeg-sys` quietly builds the C code, whose JPEG decode takes about 2.4× the CPU (its
/// warning, from a registry crate, is not shown): warn here, where cargo shows it.
fn jpeg_simd(include: &std::ffi::OsStr, wasm: bool) {
    println!("cargo:rustc-check-cfg=cfg(jpeg_simd)");
    let mut simd = false;
    for config in std::env::split_paths(include).map(|dir| dir.join("jconfig.h")) {
        if let Ok(h) = std::fs::read_to_string(&config) {
            // Rewritten whenever mozjpeg-sys is rebuilt (after nasm is installed, say).
            println!("cargo:rerun-if-changed={}", config.display());
            simd |= h
                .lines()
                .any(|l| l.split_whitespace().take(2).eq(["#define", "WITH_SIMD"]));
        }
    }
    if simd {
        println!("cargo:rustc-cfg=jpeg_simd");
    } else if !wasm {
        println!(
            "cargo:warning=libjpeg-turbo was built without its SIMD code (on x86 it needs `nasm`): \
             JPEG decoding takes about 2.4x the CPU. Install nasm, then `cargo clean -p mozjpeg-sys` \
             and rebuild."
        );
    }
}

/// dav1d's C files, as its meson build lists them (1.4.3): once, and the templates once per
/// sample depth (8 bits, and 16 for 10 and 12).
const DAV1D: &[&str] = &[
    "cdf",
    "cpu",
    "data",
    "decode",
    "dequant_tables",
    "getbits",
    "intra_edge",
    "itx_1d",
    "lf_mask",
    "lib",
    "log",
    "mem",
    "msac",
    "obu",
    "pal",
    "picture",
    "qm",
    "ref",
    "refmvs",
    "scan",
    "tables",
    "thread_task",
    "warpmv",
    "wedge",
];
const DAV1D_TEMPLATES: &[&str] = &[
    "cdef_apply",
    "cdef",
    "fg_apply",
    "filmgrain",
    "ipred_prepare",
    "ipred",
    "itx",
    "lf_apply",
    "loopfilter",
    "looprestoration",
    "lr_apply",
    "mc",
    "recon",
];

/// The configuration dav1d's meson build would write for a 32-bit little-endian machine without
/// assembly, threads or logging.
const DAV1D_CONFIG: &str = "\
#define CONFIG_8BPC 1
#define CONFIG_16BPC 1
#define CONFIG_LOG 0
#define CONFIG_MACOS_KPERF 0
#define HAVE_ASM 0
#define TRIM_DSP_FUNCTIONS 1
#define ENDIANNESS_BIG 0
#define HAVE_C11_GENERIC 1
#define ARCH_AARCH64 0
#define ARCH_ARM 0
#define ARCH_LOONGARCH 0
#define ARCH_LOONGARCH32 0
#define ARCH_LOONGARCH64 0
#define ARCH_PPC64LE 0
#define ARCH_RISCV 0
#define ARCH_RV32 0
#define ARCH_RV64 0
#define ARCH_X86 0
#define ARCH_X86_32 0
#define ARCH_X86_64 0
";

fn dav1d() {
    println!("cargo:rerun-if-env-changed=IMGEST_DAV1D_SRC");
    let Some(src) = std::env::var_os("IMGEST_DAV1D_SRC").map(PathBuf::from) else {
        panic!(
            "AVIF input in a WebAssembly build compiles dav1d's C source: set IMGEST_DAV1D_SRC to \
             its folder (scripts/dav1d-source.sh prints it; scripts/build-wasm.sh does this)"
        );
    };
    let version = std::fs::read_to_string(src.join("meson.build")).unwrap_or_default();
    assert!(
        version.contains("version: '1.4.3'")
            && version.contains("dav1d_soname_version       = '7.0.0'"),
        "IMGEST_DAV1D_SRC ({}) is not dav1d 1.4.3's source folder",
        src.display()
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let config = out.join("dav1d-config");
    std::fs::create_dir_all(config.join("dav1d")).expect("OUT_DIR is writable");
    let version_h = std::fs::read_to_string(src.join("include/dav1d/version.h.in"))
        .expect("dav1d's version.h.in")
        .replace("@DAV1D_API_VERSION_MAJOR@", "7")
        .replace("@DAV1D_API_VERSION_MINOR@", "0")
        .replace("@DAV1D_API_VERSION_PATCH@", "0");
    let write = |path: &Path, text: &str| std::fs::write(path, text).expect("OUT_DIR is writable");
    write(&config.join("dav1d/version.h"), &version_h);
    write(&config.join("config.h"), DAV1D_CONFIG);
    write(
        &config.join("vcs_version.h"),
        "#define DAV1D_VERSION \"1.4.3\"\n",
    );
    let base = |build: &mut cc::Build| {
        build
            .warnings(false)
            .define("NDEBUG", None)
            .include(&config)
            .include(config.join("dav1d"))
            .include("csrc/wasm")
            .include(&src)
            .include(src.join("include"))
            .include(src.join("include/dav1d"))
            .include(src.join("src"));
    };
    let mut build = cc::Build::new();
    base(&mut build);
    build.file("csrc/av1.c");
    for name in DAV1D {
        build.file(src.join("src").join(format!("{name}.c")));
    }
    build.compile("imgest_dav1d");
    for depth in ["8", "16"] {
        let mut build = cc::Build::new();
        base(&mut build);
        build.define("BITDEPTH", depth);
        for name in DAV1D_TEMPLATES {
            build.file(src.join("src").join(format!("{name}_tmpl.c")));
        }
        build.compile(&format!("imgest_dav1d_{depth}bpc"));
    }
}
