// Generates the gRPC code with a vendored protoc, so building needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let root = "../../proto";
    let files = [
        "../../proto/gathering/v1/auth.proto",
        "../../proto/gathering/v1/llm.proto",
    ];
    tonic_prost_build::configure().compile_protos(&files, &[root])?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}
