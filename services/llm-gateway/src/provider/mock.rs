//! The `mock` provider, for offline demos: it exists only when `USE_MOCK_PROVIDERS=true`,
//! answers locally without any network, and says so — every answer starts with `[mock]` and
//! every response carries the mock flag.

use crate::model::{
    ChatOutput, ChatRequest, EmbedOutput, FinishReason, Role, StreamEvent, TokenUsage,
};

pub const PROVIDER: &str = "mock";
pub const CHAT_MODEL: &str = "mock-chat";
pub const EMBED_MODEL: &str = "mock-embed";
/// Same dimension as the memory tables' vectors.
pub const EMBED_DIMENSIONS: usize = 1536;

pub fn complete(model: &str, req: &ChatRequest) -> ChatOutput {
    let last_user = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let content = format!(
        "[mock] {model} is a mock model (USE_MOCK_PROVIDERS=true). You said: {}",
        crate::model::truncate(last_user, 200)
    );
    let input = req
        .messages
        .iter()
        .map(|m| m.content.len() / 4 + 1)
        .sum::<usize>();
    let output = content.len() / 4 + 1;
    ChatOutput {
        content,
        tool_calls: Vec::new(),
        finish: FinishReason::Stop,
        usage: TokenUsage {
            input: u32::try_from(input).unwrap_or(u32::MAX),
            output: u32::try_from(output).unwrap_or(u32::MAX),
        },
    }
}

/// The same answer as `complete`, as stream events (about one word each).
pub fn stream(model: &str, req: &ChatRequest) -> Vec<StreamEvent> {
    let out = complete(model, req);
    let mut events: Vec<StreamEvent> = out
        .content
        .split_inclusive(' ')
        .map(|w| StreamEvent::Text(w.to_owned()))
        .collect();
    events.push(StreamEvent::Finish {
        finish: out.finish,
        usage: out.usage,
    });
    events
}

/// A deterministic unit vector per input.
pub fn embed(inputs: &[String]) -> EmbedOutput {
    let vectors = inputs
        .iter()
        .map(|input| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in input.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            let mut v: Vec<f32> = (0..EMBED_DIMENSIONS)
                .map(|i| {
                    h ^= i as u64;
                    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    ((h >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect();
    let tokens = inputs.iter().map(|i| i.len() / 4 + 1).sum::<usize>();
    EmbedOutput {
        vectors,
        input_tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
    }
}
