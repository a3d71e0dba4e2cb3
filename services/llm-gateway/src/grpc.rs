//! The gRPC API (`gathering.v1.LlmGateway`): complete, streaming complete (a server stream of
//! deltas whose last message carries `done`, the finish reason and the usage), embed, list
//! models; provider settings and virtual keys for the edge's admin routes. Other services
//! (executors, the edge) call the gateway this way, with a service credential: they are
//! trusted callers, not limited by virtual keys, and not answered from the response cache.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use gathering_proto::v1 as pb;
use gathering_proto::v1::llm_gateway_server::{LlmGateway, LlmGatewayServer};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::access::Principal;
use crate::access::manage::KeyAdmin;
use crate::cache::CacheMode;
use crate::engine::Gateway;
use crate::error::GatewayError;
use crate::model::{
    Caller, ChatCall, ChatRequest, EmbedCall, Message, Role, StreamEvent, ToolCall, ToolDef,
    request_id,
};
use crate::registry::ModelKind;
use crate::settings::ProviderSettings;
use gathering_core::service_token::ServiceKey;
use gathering_proto::service_auth::RequireService;
use tonic::service::interceptor::InterceptedService;

/// Longest deadline a caller may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Largest gRPC message accepted.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

pub struct LlmService {
    gateway: Gateway,
    settings: ProviderSettings,
    keys: KeyAdmin,
}

impl LlmService {
    /// The gRPC service, behind the service-credential check: only other GatheRing processes
    /// (holding the master key) may spend the providers' keys through it.
    pub fn server(
        gateway: Gateway,
        settings: ProviderSettings,
        keys: KeyAdmin,
        key: ServiceKey,
    ) -> InterceptedService<LlmGatewayServer<LlmService>, RequireService> {
        InterceptedService::new(
            LlmGatewayServer::new(LlmService {
                gateway,
                settings,
                keys,
            })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
            RequireService::new(key),
        )
    }
}

fn caller(c: Option<pb::Caller>) -> (Caller, Option<String>) {
    let c = c.unwrap_or_default();
    let nonempty = |s: String| (!s.is_empty()).then(|| crate::model::truncate(&s, 128));
    (
        Caller {
            service: nonempty(c.service),
            agent_id: (c.agent_id != 0).then_some(c.agent_id),
            user_id: nonempty(c.user_id),
        },
        (!c.request_id.is_empty()).then_some(c.request_id),
    )
}

fn deadline(gateway: &Gateway, timeout_ms: u32) -> Instant {
    let timeout = if timeout_ms == 0 {
        gateway.default_deadline()
    } else {
        Duration::from_millis(u64::from(timeout_ms)).min(MAX_TIMEOUT)
    };
    Instant::now() + timeout
}

fn to_call(gateway: &Gateway, req: pb::CompletionRequest) -> Result<ChatCall, GatewayError> {
    let messages = req
        .messages
        .into_iter()
        .map(|m| {
            Ok(Message {
                role: Role::parse(&m.role)?,
                content: m.content,
                tool_calls: m
                    .tool_calls
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.name,
                        arguments: if c.arguments_json.trim().is_empty() {
                            "{}".into()
                        } else {
                            c.arguments_json
                        },
                    })
                    .collect(),
                tool_call_id: (!m.tool_call_id.is_empty()).then_some(m.tool_call_id),
                name: (!m.name.is_empty()).then_some(m.name),
            })
        })
        .collect::<Result<Vec<_>, GatewayError>>()?;
    let tools = req
        .tools
        .into_iter()
        .map(|t| {
            let parameters = if t.input_schema_json.trim().is_empty() {
                serde_json::json!({"type": "object", "properties": {}})
            } else {
                serde_json::from_str(&t.input_schema_json).map_err(|e| {
                    GatewayError::InvalidRequest(format!(
                        "tool '{}': input_schema_json is not JSON ({e})",
                        crate::model::truncate(&t.name, 40)
                    ))
                })?
            };
            Ok(ToolDef {
                name: t.name,
                description: t.description,
                parameters,
            })
        })
        .collect::<Result<Vec<_>, GatewayError>>()?;
    let (caller, given_id) = caller(req.caller);
    Ok(ChatCall {
        model: req.model,
        fallbacks: req.fallbacks,
        request: ChatRequest {
            messages,
            tools,
            max_tokens: req.max_tokens,
            temperature: req.temperature,
            stop: req.stop,
        },
        caller,
        request_id: request_id(given_id.as_deref()),
        deadline: deadline(gateway, req.timeout_ms),
        principal: Principal::Trusted,
        cache: CacheMode::Off,
    })
}

fn pb_calls(calls: Vec<ToolCall>) -> Vec<pb::ToolCall> {
    calls
        .into_iter()
        .map(|c| pb::ToolCall {
            id: c.id,
            name: c.name,
            arguments_json: c.arguments,
        })
        .collect()
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::CompletionChunk, Status>> + Send>>;

#[tonic::async_trait]
impl LlmGateway for LlmService {
    async fn complete(
        &self,
        request: Request<pb::CompletionRequest>,
    ) -> Result<Response<pb::CompletionResponse>, Status> {
        let call = to_call(&self.gateway, request.into_inner()).map_err(|e| e.grpc_status())?;
        let done = self
            .gateway
            .complete(call)
            .await
            .map_err(|e| e.grpc_status())?;
        Ok(Response::new(pb::CompletionResponse {
            content: done.output.content,
            tool_calls: pb_calls(done.output.tool_calls),
            finish_reason: done.output.finish.as_str().to_owned(),
            usage: Some(pb::Usage {
                input_tokens: done.output.usage.input,
                output_tokens: done.output.usage.output,
                cost_usd: done.cost_usd.unwrap_or(0.0),
            }),
            model: done.model,
            request_id: done.request_id,
            mock: done.mock,
        }))
    }

    type StreamCompleteStream = ChunkStream;

    async fn stream_complete(
        &self,
        request: Request<pb::CompletionRequest>,
    ) -> Result<Response<Self::StreamCompleteStream>, Status> {
        let call = to_call(&self.gateway, request.into_inner()).map_err(|e| e.grpc_status())?;
        let stream = self
            .gateway
            .stream(call)
            .await
            .map_err(|e| e.grpc_status())?;
        let model = stream.model.clone();
        let request_id = stream.request_id.clone();
        let mock = stream.mock;
        let price = stream.price;
        let chunks = stream.map(move |event| {
            let mut chunk = pb::CompletionChunk {
                model: model.clone(),
                request_id: request_id.clone(),
                mock,
                ..Default::default()
            };
            match event {
                Ok(StreamEvent::Text(t)) => chunk.delta = t,
                Ok(StreamEvent::ToolCalls(calls)) => chunk.tool_calls = pb_calls(calls),
                Ok(StreamEvent::Finish { finish, usage }) => {
                    chunk.done = true;
                    chunk.finish_reason = finish.as_str().to_owned();
                    chunk.usage = Some(pb::Usage {
                        input_tokens: usage.input,
                        output_tokens: usage.output,
                        cost_usd: price.map_or(0.0, |(pi, po)| {
                            (f64::from(usage.input) * pi + f64::from(usage.output) * po)
                                / 1_000_000.0
                        }),
                    });
                }
                Err(e) => return Err(e.grpc_status()),
            }
            Ok(chunk)
        });
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let req = request.into_inner();
        let (caller, given_id) = caller(req.caller);
        let call = EmbedCall {
            model: req.model,
            inputs: req.inputs,
            caller,
            request_id: request_id(given_id.as_deref()),
            deadline: deadline(&self.gateway, 0),
            principal: Principal::Trusted,
        };
        let done = self
            .gateway
            .embed(call)
            .await
            .map_err(|e| e.grpc_status())?;
        Ok(Response::new(pb::EmbedResponse {
            embeddings: done
                .output
                .vectors
                .into_iter()
                .map(|values| pb::Embedding { values })
                .collect(),
            model: done.model,
            usage: Some(pb::Usage {
                input_tokens: done.output.input_tokens,
                output_tokens: 0,
                cost_usd: done.cost_usd.unwrap_or(0.0),
            }),
            mock: done.mock,
        }))
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ModelList>, Status> {
        let models = self
            .gateway
            .list_models()
            .into_iter()
            .map(|m| pb::ModelInfo {
                id: m.id,
                provider: m.provider,
                name: m.name,
                alias: m.alias.unwrap_or_default(),
                context_window: m
                    .context_window
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(0),
                function_calling: m.function_calling && m.kind == ModelKind::Chat,
                vision: m.vision,
                available: m.available,
            })
            .collect();
        Ok(Response::new(pb::ModelList { models }))
    }

    async fn get_provider_settings(
        &self,
        request: Request<pb::GetProviderSettingsRequest>,
    ) -> Result<Response<pb::ProviderSettingsList>, Status> {
        let names = request.into_inner().providers;
        if names.len() > 200 {
            return Err(Status::invalid_argument("at most 200 providers"));
        }
        Ok(Response::new(pb::ProviderSettingsList {
            providers: self.settings.get(&names),
        }))
    }

    async fn set_provider_settings(
        &self,
        request: Request<pb::SetProviderSettingsRequest>,
    ) -> Result<Response<pb::ProviderSettings>, Status> {
        self.settings
            .set(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn probe_provider(
        &self,
        request: Request<pb::ProbeProviderRequest>,
    ) -> Result<Response<pb::ProbeProviderResponse>, Status> {
        let provider = request.into_inner().provider.to_ascii_lowercase();
        Ok(Response::new(self.settings.probe(&provider).await))
    }

    async fn create_gateway_key(
        &self,
        request: Request<pb::CreateGatewayKeyRequest>,
    ) -> Result<Response<pb::GatewayKeySecret>, Status> {
        self.keys
            .create(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_gateway_keys(
        &self,
        request: Request<pb::ListGatewayKeysRequest>,
    ) -> Result<Response<pb::GatewayKeyList>, Status> {
        self.keys
            .list(request.into_inner().include_revoked)
            .await
            .map(Response::new)
    }

    async fn rotate_gateway_key(
        &self,
        request: Request<pb::GatewayKeyId>,
    ) -> Result<Response<pb::GatewayKeySecret>, Status> {
        self.keys
            .rotate(request.into_inner().id)
            .await
            .map(Response::new)
    }

    async fn revoke_gateway_key(
        &self,
        request: Request<pb::GatewayKeyId>,
    ) -> Result<Response<pb::GatewayKey>, Status> {
        self.keys
            .revoke(request.into_inner().id)
            .await
            .map(Response::new)
    }

    async fn set_gateway_team(
        &self,
        request: Request<pb::SetGatewayTeamRequest>,
    ) -> Result<Response<pb::GatewayTeam>, Status> {
        self.keys
            .set_team(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_gateway_teams(
        &self,
        _request: Request<pb::ListGatewayTeamsRequest>,
    ) -> Result<Response<pb::GatewayTeamList>, Status> {
        self.keys.list_teams().await.map(Response::new)
    }
}
