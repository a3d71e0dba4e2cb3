//! The LLM gateway, as the runtime uses it.

use std::time::Duration;

use futures_util::StreamExt;
use gathering_proto::service_auth::{AuthedChannel, ServiceAuth};
use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_client::LlmGatewayClient;
use tonic::transport::Endpoint;

use crate::AgentError;

/// A conversation message in the gateway's normalised form.
pub type Message = pb::ChatMessage;

#[derive(Clone)]
pub struct Llm {
    client: LlmGatewayClient<AuthedChannel>,
    /// The embedding model used for memories (`provider/model` or alias).
    pub embedding_model: String,
}

/// One model answer.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub content: String,
    pub tool_calls: Vec<pb::ToolCall>,
    pub finish_reason: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// What a completion call asks for.
pub struct Request<'a> {
    pub model: &'a str,
    pub messages: Vec<Message>,
    pub tools: Vec<pb::ToolDefinition>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub agent_id: i64,
    pub request_id: &'a str,
}

impl Request<'_> {
    fn into_proto(self, service: &str) -> pb::CompletionRequest {
        pb::CompletionRequest {
            model: self.model.to_owned(),
            messages: self.messages,
            tools: self.tools,
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            fallbacks: Vec::new(),
            caller: Some(pb::Caller {
                service: service.to_owned(),
                agent_id: self.agent_id,
                request_id: self.request_id.to_owned(),
                user_id: String::new(),
            }),
            timeout_ms: 0,
            stop: Vec::new(),
        }
    }
}

impl Llm {
    /// A lazily connected client of the gateway at `url`; every call carries `auth`.
    pub fn connect(
        url: &str,
        embedding_model: &str,
        auth: ServiceAuth,
    ) -> Result<Self, AgentError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| AgentError::Invalid(format!("LLM gateway URL: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            client: LlmGatewayClient::with_interceptor(channel, auth),
            embedding_model: embedding_model.to_owned(),
        })
    }

    /// The gateway's gRPC client (cheap to clone; carries the service credential), for calls
    /// beyond completions: provider settings and probes.
    pub fn grpc(&self) -> LlmGatewayClient<AuthedChannel> {
        self.client.clone()
    }

    /// The same client, embedding with another model.
    pub fn with_embedding_model(&self, model: &str) -> Self {
        Self {
            client: self.client.clone(),
            embedding_model: model.to_owned(),
        }
    }

    pub async fn complete(
        &self,
        service: &str,
        req: Request<'_>,
    ) -> Result<Completion, AgentError> {
        let r = self
            .client
            .clone()
            .complete(req.into_proto(service))
            .await?
            .into_inner();
        let usage = r.usage.unwrap_or_default();
        Ok(Completion {
            content: r.content,
            tool_calls: r.tool_calls,
            finish_reason: r.finish_reason,
            model: r.model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        })
    }

    /// Streams a completion: `on_delta` gets each text delta as it arrives; the result is the
    /// whole answer (tool calls included).
    pub async fn stream(
        &self,
        service: &str,
        req: Request<'_>,
        mut on_delta: impl FnMut(&str),
    ) -> Result<Completion, AgentError> {
        let mut stream = self
            .client
            .clone()
            .stream_complete(req.into_proto(service))
            .await?
            .into_inner();
        let mut out = Completion::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if !chunk.delta.is_empty() {
                on_delta(&chunk.delta);
                out.content.push_str(&chunk.delta);
            }
            out.tool_calls.extend(chunk.tool_calls);
            if chunk.done {
                let usage = chunk.usage.unwrap_or_default();
                out.finish_reason = chunk.finish_reason;
                out.model = chunk.model;
                out.input_tokens = usage.input_tokens;
                out.output_tokens = usage.output_tokens;
            }
        }
        Ok(out)
    }

    /// The gateway's catalogue, each model with whether its provider is usable (configured).
    pub async fn list_models(&self) -> Result<Vec<pb::ModelInfo>, AgentError> {
        let r = self
            .client
            .clone()
            .list_models(pb::ListModelsRequest {})
            .await?;
        Ok(r.into_inner().models)
    }

    /// Embeddings of `texts`, or `None` when the gateway cannot embed (no embedding provider
    /// configured): callers fall back to text search.
    pub async fn embed(&self, texts: &[String], agent_id: i64) -> Option<Vec<Vec<f32>>> {
        if self.embedding_model.is_empty() || texts.is_empty() {
            return None;
        }
        let req = pb::EmbedRequest {
            model: self.embedding_model.clone(),
            inputs: texts.to_vec(),
            caller: Some(pb::Caller {
                service: "agents".into(),
                agent_id,
                request_id: String::new(),
                user_id: String::new(),
            }),
        };
        match self.client.clone().embed(req).await {
            Ok(r) => {
                let vectors: Vec<Vec<f32>> = r
                    .into_inner()
                    .embeddings
                    .into_iter()
                    .map(|e| e.values)
                    .collect();
                (vectors.len() == texts.len()).then_some(vectors)
            }
            Err(e) => {
                tracing::debug!(error = %e, "embedding unavailable; falling back to text search");
                None
            }
        }
    }
}
