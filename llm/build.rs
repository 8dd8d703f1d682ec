fn main() {
    // With `cuda`, llama.cpp and ggml are shared libraries installed beside the worker. Workers
    // start with an empty environment (no LD_LIBRARY_PATH), so the binary itself says where they
    // are: in its own folder.
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}
