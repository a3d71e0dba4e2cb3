//! The `ai` skill: completion, chat, embeddings, summaries, translation and extraction through
//! the LLM gateway (so every call has the gateway's retries, fallbacks and usage accounting).

use std::sync::Arc;

use gathering_tools::{CallContext, Category, Permission, Registry, ToolError, ToolOutput};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PlatformDeps, def, parse, with};
use crate::llm::{Message, Request};

const SKILL: &str = "ai";

fn text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max})
}

fn tuning() -> Vec<(&'static str, Value)> {
    vec![
        ("model", json!({"type": "string", "maxLength": 200})),
        (
            "max_tokens",
            json!({"type": "integer", "minimum": 1, "maximum": 32000}),
        ),
        (
            "temperature",
            json!({"type": "number", "minimum": 0, "maximum": 2}),
        ),
    ]
}

fn schema(props: Vec<(&'static str, Value)>, required: &[&str]) -> Value {
    let mut p: serde_json::Map<String, Value> =
        props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in tuning() {
        p.insert(k.to_owned(), v);
    }
    json!({"type": "object", "properties": p, "required": required, "additionalProperties": false})
}

#[derive(Deserialize)]
struct Tuning {
    model: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
}

async fn ask(
    deps: &PlatformDeps,
    ctx: &CallContext,
    tuning: &Tuning,
    messages: Vec<Message>,
) -> Result<ToolOutput, ToolError> {
    let model = tuning
        .model
        .clone()
        .unwrap_or_else(|| deps.default_model.clone());
    let request = Request {
        model: &model,
        messages,
        tools: Vec::new(),
        max_tokens: tuning.max_tokens,
        temperature: tuning.temperature,
        agent_id: ctx.agent_id.unwrap_or(0),
        request_id: "",
    };
    let completion = tokio::select! {
        c = deps.llm.complete("tools", request) => c.map_err(|e| ToolError::Failed(e.to_string()))?,
        _ = ctx.cancel.cancelled() => return Err(ToolError::Cancelled { tool: "ai".into() }),
    };
    Ok(ToolOutput::ok(
        "completed",
        json!({
            "content": completion.content,
            "model": completion.model,
            "usage": {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens},
        }),
    ))
}

fn user(content: String) -> Message {
    Message {
        role: "user".into(),
        content,
        ..Default::default()
    }
}

fn system(content: String) -> Message {
    Message {
        role: "system".into(),
        content,
        ..Default::default()
    }
}

pub fn register(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    register_ai_complete(reg, deps)?;
    register_ai_chat(reg, deps)?;
    register_ai_summarize(reg, deps)?;
    register_ai_translate(reg, deps)?;
    register_ai_extract(reg, deps)?;
    register_ai_embed(reg, deps)?;
    Ok(())
}

const NET: &[Permission] = &[Permission::Network];

fn register_ai_complete(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "ai_complete",
            SKILL,
            Category::Llm,
            "Ask a model: a prompt (and optional system prompt) in, text out",
            NET,
        )
        .schema(schema(
            vec![("prompt", text(200_000)), ("system", text(50_000))],
            &["prompt"],
        )),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                prompt: String,
                system: Option<String>,
                #[serde(flatten)]
                tuning: Tuning,
            }
            let i: In = parse(input)?;
            let mut messages = Vec::new();
            if let Some(s) = i.system {
                messages.push(system(s));
            }
            messages.push(user(i.prompt));
            ask(&deps, &ctx, &i.tuning, messages).await
        }),
    )
}

fn register_ai_chat(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("ai_chat", SKILL, Category::Llm, "A conversation with a model: messages [{role, content}] in, the next reply out", NET).schema(schema(
            vec![(
                "messages",
                json!({"type": "array", "minItems": 1, "maxItems": 200, "items": {
                    "type": "object",
                    "properties": {"role": {"type": "string", "enum": ["system", "user", "assistant"]}, "content": {"type": "string", "maxLength": 200000}},
                    "required": ["role", "content"], "additionalProperties": false}}),
            )],
            &["messages"],
        )),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct Msg {
                role: String,
                content: String,
            }
            #[derive(Deserialize)]
            struct In {
                messages: Vec<Msg>,
                #[serde(flatten)]
                tuning: Tuning,
            }
            let i: In = parse(input)?;
            let messages = i.messages.into_iter().map(|m| Message { role: m.role, content: m.content, ..Default::default() }).collect();
            ask(&deps, &ctx, &i.tuning, messages).await
        }),
    )
}

fn register_ai_summarize(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "ai_summarize",
            SKILL,
            Category::Llm,
            "Summarise a text",
            NET,
        )
        .schema(schema(
            vec![
                ("text", text(500_000)),
                (
                    "max_words",
                    json!({"type": "integer", "minimum": 10, "maximum": 5000}),
                ),
            ],
            &["text"],
        )),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                text: String,
                max_words: Option<u32>,
                #[serde(flatten)]
                tuning: Tuning,
            }
            let i: In = parse(input)?;
            let limit = i
                .max_words
                .map(|n| format!(" in at most {n} words"))
                .unwrap_or_default();
            let messages = vec![
                system(format!(
                    "Summarise the user's text{limit}. Answer with the summary only."
                )),
                user(i.text),
            ];
            ask(&deps, &ctx, &i.tuning, messages).await
        }),
    )
}

fn register_ai_translate(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def(
            "ai_translate",
            SKILL,
            Category::Llm,
            "Translate a text into a target language",
            NET,
        )
        .schema(schema(
            vec![
                ("text", text(500_000)),
                ("target_language", text(100)),
                ("source_language", text(100)),
            ],
            &["text", "target_language"],
        )),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                text: String,
                target_language: String,
                source_language: Option<String>,
                #[serde(flatten)]
                tuning: Tuning,
            }
            let i: In = parse(input)?;
            let from = i
                .source_language
                .map(|s| format!(" from {s}"))
                .unwrap_or_default();
            let messages = vec![
                system(format!(
                    "Translate the user's text{from} into {}. Answer with the translation only.",
                    i.target_language
                )),
                user(i.text),
            ];
            ask(&deps, &ctx, &i.tuning, messages).await
        }),
    )
}

fn register_ai_extract(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("ai_extract", SKILL, Category::Llm, "Extract named fields from a text as a JSON object", NET).schema(schema(
            vec![("text", text(500_000)), ("fields", json!({"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 200}}))],
            &["text", "fields"],
        )),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                text: String,
                fields: Vec<String>,
                #[serde(flatten)]
                tuning: Tuning,
            }
            let i: In = parse(input)?;
            let messages = vec![
                system(format!(
                    "Extract these fields from the user's text: {}. Answer with one JSON object with exactly these keys \
                     (null when absent), and nothing else.",
                    i.fields.join(", ")
                )),
                user(i.text),
            ];
            let mut out = ask(&deps, &ctx, &i.tuning, messages).await?;
            // The model's answer is parsed; an answer that is not a JSON object is reported as such.
            let content = out.data["content"].as_str().unwrap_or("").trim().trim_start_matches("```json").trim_matches('`').trim().to_owned();
            match serde_json::from_str::<Value>(&content) {
                Ok(Value::Object(fields)) => out.data["fields"] = Value::Object(fields),
                _ => {
                    out.success = false;
                    out.message = "the model did not answer with a JSON object".into();
                }
            }
            Ok(out)
        }),
    )
}

fn register_ai_embed(reg: &Registry, deps: &Arc<PlatformDeps>) -> Result<(), ToolError> {
    reg.register(
        def("ai_embed", SKILL, Category::Llm, "Embedding vectors of texts", NET).schema(json!({
            "type": "object",
            "properties": {
                "texts": {"type": "array", "minItems": 1, "maxItems": 256, "items": {"type": "string", "minLength": 1, "maxLength": 100000}},
                "model": {"type": "string", "maxLength": 200},
            },
            "required": ["texts"],
            "additionalProperties": false,
        })),
        with(deps, |deps, ctx, input| async move {
            #[derive(Deserialize)]
            struct In {
                texts: Vec<String>,
                model: Option<String>,
            }
            let i: In = parse(input)?;
            let llm = match i.model {
                Some(m) => deps.llm.with_embedding_model(&m),
                None => deps.llm.clone(),
            };
            let vectors = llm
                .embed(&i.texts, ctx.agent_id.unwrap_or(0))
                .await
                .ok_or_else(|| ToolError::Failed("no embedding model is available".into()))?;
            let dims = vectors.first().map(Vec::len).unwrap_or(0);
            Ok(ToolOutput::ok(format!("{} vectors of {dims} dimensions", vectors.len()), json!({"embeddings": vectors, "dimensions": dims})))
        }),
    )
}
