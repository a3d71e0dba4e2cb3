//! Provider adapters: each translates the normalised model ([`crate::model`]) to one wire
//! format and back — request bodies, whole answers, and stream decoding.
//!
//! - [`openai`]: OpenAI Chat Completions, also DeepSeek and any OpenAI-compatible server;
//! - [`anthropic`]: the Anthropic Messages API;
//! - [`ollama`]: Ollama's `/api/chat` and `/api/embed`;
//! - [`mock`]: answers made up locally, only when `USE_MOCK_PROVIDERS=true`.
//!
//! [`frame`] splits a byte stream into SSE events or NDJSON lines; each adapter's decoder turns
//! those into [`StreamEvent`](crate::model::StreamEvent)s.

pub mod anthropic;
pub mod frame;
pub mod mock;
pub mod ollama;
pub mod openai;

use std::collections::VecDeque;
use std::sync::Arc;

use gathering_core::Secret;

use crate::error::GatewayError;
use crate::model::{ChatOutput, ChatRequest, EmbedOutput, StreamEvent};

/// The wire format a provider speaks (`agent.providers.api_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
    Mock,
}

impl Wire {
    pub fn from_api_type(api_type: &str) -> Option<Wire> {
        match api_type {
            "openai" => Some(Wire::OpenAi),
            "anthropic" => Some(Wire::Anthropic),
            "ollama" => Some(Wire::Ollama),
            _ => None,
        }
    }
}

/// Everything needed to call one provider.
#[derive(Debug)]
pub struct Endpoint {
    pub provider: Arc<str>,
    pub wire: Wire,
    /// Without a trailing slash.
    pub base_url: String,
    pub key: Option<Secret>,
    /// Local providers (Ollama) need no key.
    pub is_local: bool,
    /// Calls go through the outbound guard (an admin-set URL of a remote provider).
    pub guarded: bool,
}

impl Endpoint {
    pub fn chat_url(&self) -> String {
        match self.wire {
            Wire::OpenAi => format!("{}/chat/completions", self.base_url),
            Wire::Anthropic => format!("{}/v1/messages", self.base_url),
            Wire::Ollama => format!("{}/api/chat", self.base_url),
            Wire::Mock => String::new(),
        }
    }

    pub fn embed_url(&self) -> Result<String, GatewayError> {
        match self.wire {
            Wire::OpenAi => Ok(format!("{}/embeddings", self.base_url)),
            Wire::Ollama => Ok(format!("{}/api/embed", self.base_url)),
            Wire::Anthropic => Err(GatewayError::InvalidRequest(format!(
                "provider '{}' has no embeddings API",
                self.provider
            ))),
            Wire::Mock => Ok(String::new()),
        }
    }

    /// Request body of a chat call.
    pub fn chat_body(
        &self,
        model: &str,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        match self.wire {
            Wire::OpenAi => openai::chat_body(&self.provider, model, req, stream),
            Wire::Anthropic => anthropic::chat_body(model, req, stream),
            Wire::Ollama => ollama::chat_body(model, req, stream),
            Wire::Mock => Ok(Vec::new()),
        }
    }

    pub fn parse_chat(&self, body: &[u8]) -> Result<ChatOutput, GatewayError> {
        let parsed = match self.wire {
            Wire::OpenAi => openai::parse_chat(body),
            Wire::Anthropic => anthropic::parse_chat(body),
            Wire::Ollama => ollama::parse_chat(body),
            Wire::Mock => Err("the mock provider has no wire format".into()),
        };
        parsed.map_err(|message| self.malformed(message))
    }

    pub fn embed_body(&self, model: &str, inputs: &[String]) -> Vec<u8> {
        let v = match self.wire {
            Wire::Ollama => serde_json::json!({"model": model, "input": inputs}),
            _ => serde_json::json!({"model": model, "input": inputs, "encoding_format": "float"}),
        };
        v.to_string().into_bytes()
    }

    pub fn parse_embed(&self, body: &[u8], expected: usize) -> Result<EmbedOutput, GatewayError> {
        let parsed = match self.wire {
            Wire::Ollama => ollama::parse_embed(body),
            _ => openai::parse_embed(body),
        }
        .map_err(|m| self.malformed(m))?;
        if parsed.vectors.len() != expected {
            return Err(self.malformed(format!(
                "{} embeddings for {expected} inputs",
                parsed.vectors.len()
            )));
        }
        Ok(parsed)
    }

    pub fn decoder(&self) -> Decoder {
        match self.wire {
            Wire::OpenAi => Decoder::OpenAi(openai::StreamDecoder::default()),
            Wire::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::default()),
            Wire::Ollama | Wire::Mock => Decoder::Ollama(ollama::StreamDecoder::default()),
        }
    }

    pub fn malformed(&self, message: impl Into<String>) -> GatewayError {
        GatewayError::Malformed {
            provider: self.provider.to_string(),
            message: message.into(),
        }
    }
}

/// A stream decoder of one wire format.
pub enum Decoder {
    OpenAi(openai::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Ollama(ollama::StreamDecoder),
}

/// What feeding one framed event to a decoder produced.
pub type DecodeResult = Result<bool, DecodeError>;

/// A stream that went wrong: malformed data, or an error event from the provider.
#[derive(Debug)]
pub enum DecodeError {
    Malformed(String),
    Provider { status: u16, message: String },
}

impl Decoder {
    /// Whether this format is SSE (else NDJSON).
    pub fn is_sse(&self) -> bool {
        !matches!(self, Decoder::Ollama(_))
    }

    /// Feeds one event's data; returns true once the stream is complete.
    pub fn feed(&mut self, data: &[u8], out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        match self {
            Decoder::OpenAi(d) => d.feed(data, out),
            Decoder::Anthropic(d) => d.feed(data, out),
            Decoder::Ollama(d) => d.feed(data, out),
        }
    }

    /// The upstream closed the stream; completes it if the format allows, else an error.
    pub fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> DecodeResult {
        match self {
            Decoder::OpenAi(d) => d.end(out),
            Decoder::Anthropic(_) | Decoder::Ollama(_) => Err(DecodeError::Malformed(
                "stream ended before its final event".into(),
            )),
        }
    }
}
