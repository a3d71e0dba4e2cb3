//! `fake-llm [openai|anthropic|ollama]`: one fake LLM provider ([`gathering_testkit::fake_llm`])
//! as a process of its own, for scripts that run the whole stack (the API fuzz run points
//! `OPENAI_BASE_URL` at it, so agent chat reaches a provider that answers). Prints the base URL
//! on the first line of stdout and serves until SIGTERM or SIGINT. Every chat
//! answers "ok"; embeddings are deterministic vectors.

use std::process::ExitCode;

use gathering_testkit::fake_llm::{FakeProvider, Wire};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let wire = match std::env::args().nth(1).as_deref() {
        None | Some("openai") => Wire::OpenAi,
        Some("anthropic") => Wire::Anthropic,
        Some("ollama") => Wire::Ollama,
        Some(other) => {
            eprintln!("fake-llm: unknown wire format {other:?} (openai, anthropic or ollama)");
            return ExitCode::from(2);
        }
    };
    let fake = FakeProvider::start(wire).await;
    println!("{}", fake.base_url());
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("fake-llm: cannot listen for SIGTERM");
        return ExitCode::FAILURE;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    drop(fake);
    ExitCode::SUCCESS
}
