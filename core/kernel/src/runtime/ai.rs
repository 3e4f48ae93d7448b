//! The AI service: chat completions for plugins that declare `ai`. Core defines the interface
//! and the handle ([`Ai`]); a provider plugin implements [`AiProvider`] and installs it with
//! `context.provide_ai` (the `ai` plugin calls any OpenAI-compatible server). An operator who
//! leaves the provider out gets [`AiError::Unavailable`] from every call, never a missing
//! method, so a plugin that uses AI builds and runs either way.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::abi::plugin::Plugin;
use crate::error::ApiError;
use crate::runtime::Runtime;
use crate::runtime::state::PluginStatus;

/// Who speaks in a [`ChatMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person (or plugin) asking.
    User,
    /// The model's earlier answers.
    Assistant,
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message from the user.
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }

    /// Instructions for the model.
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }
}

/// A chat completion request: the conversation so far, and optionally the model and limits
/// (the provider's configured defaults otherwise).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model; `None` is the provider's default.
    pub model: Option<String>,
    /// The conversation, oldest first; at least one message.
    pub messages: Vec<ChatMessage>,
    /// The most tokens to generate; the provider caps it at its configured maximum.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// A one-message request: `ChatRequest::prompt("Summarise: …")`.
    pub fn prompt(text: impl Into<String>) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::user(text)],
            ..ChatRequest::default()
        }
    }
}

/// Tokens a request used, as the model counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Usage {
    /// Tokens of the conversation sent.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

/// A finished chat completion.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Completion {
    /// The provider's id for it.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The answer.
    pub content: String,
    /// Why generation stopped: `stop` (the model finished), `length` (`max_tokens`), or what
    /// the provider said.
    pub finish_reason: String,
    /// Tokens used.
    pub usage: Usage,
}

/// One piece of a streamed completion: text to append, and at the end the finish reason and
/// the usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ChatChunk {
    /// Text to append to what came before (may be empty).
    pub delta: String,
    /// Set on the chunk that ends generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Set on the last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A model the provider serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Model {
    /// Its name, as [`ChatRequest::model`] takes it.
    pub id: String,
    /// Who serves it, as the provider says.
    pub owned_by: String,
    /// Whether it is the configured default.
    pub default: bool,
}

/// Why an AI call failed. Converts into an HTTP answer ([`ApiError`]) with the status each
/// case deserves, so a route can use `?`.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AiError {
    /// No provider is installed, or it is stopped or not configured.
    #[error("AI is unavailable: {0}")]
    Unavailable(String),
    /// The request is wrong; `field` names what to fix.
    #[error("{field}: {message}")]
    Invalid {
        /// The request's field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A quota is used up until `retry_after`.
    #[error("AI quota exceeded: {scope} ({used} of {limit} tokens today)")]
    QuotaExceeded {
        /// Whose: `user 12`, `plugin shop`.
        scope: String,
        /// Tokens used in the period.
        used: u64,
        /// The period's allowance.
        limit: u64,
        /// When it renews.
        retry_after: Duration,
    },
    /// The AI server refused the request itself (an unknown model, a conversation longer
    /// than the model's context): asking again the same way fails the same way.
    #[error("the AI server refused the request: {message}")]
    Rejected {
        /// Its HTTP status.
        status: u16,
        /// What it said, shortened.
        message: String,
    },
    /// The provider kept refusing or failing after the retries.
    #[error("the AI provider failed: {message}")]
    Provider {
        /// Its HTTP status, when it answered.
        status: Option<u16>,
        /// What it said, shortened.
        message: String,
        /// When the provider said to come back (429 with `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The provider did not answer in the configured time.
    #[error("the AI provider did not answer within {0:?}")]
    Timeout(Duration),
}

impl From<AiError> for ApiError {
    fn from(error: AiError) -> ApiError {
        use axum::http::StatusCode;
        let message = error.to_string();
        match error {
            AiError::Unavailable(_) => ApiError::unavailable(message).with_code("ai_unavailable"),
            AiError::Invalid { field, message } => ApiError::invalid_field(field, message),
            AiError::QuotaExceeded { retry_after, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
                    .with_code("quota_exceeded")
                    .with_retry_after(seconds(retry_after))
            }
            AiError::Rejected { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, message).with_code("ai_rejected")
            }
            AiError::Provider { retry_after, .. } => {
                let error =
                    ApiError::new(StatusCode::BAD_GATEWAY, message).with_code("ai_provider");
                match retry_after {
                    Some(after) => error.with_retry_after(seconds(after)),
                    None => error,
                }
            }
            AiError::Timeout(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, message).with_code("ai_timeout")
            }
        }
    }
}

/// Whole seconds, at least one: what `Retry-After` says.
fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs().max(1)).unwrap_or(u32::MAX)
}

/// Who a call is made for: the plugin always, and the person when a route acts for one; a
/// provider keeps per-plugin and per-person quotas and usage with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The calling plugin.
    pub plugin: &'static str,
    /// The person it acts for, if any.
    pub user: Option<i64>,
}

/// A boxed future of an AI call.
pub type AiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AiError>> + Send + 'a>>;

/// A streamed completion: chunks until the one with a finish reason; an error ends it.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, AiError>> + Send>>;

/// What a provider plugin implements; see the module's documentation.
pub trait AiProvider: Send + Sync + 'static {
    /// A complete answer.
    fn chat(&self, caller: Caller, request: ChatRequest) -> AiFuture<'_, Completion>;
    /// An answer as it is generated.
    fn stream(&self, caller: Caller, request: ChatRequest) -> AiFuture<'_, ChunkStream>;
    /// The models it serves.
    fn models(&self) -> AiFuture<'_, Vec<Model>>;
}

/// The installed provider, kept with the runtime.
#[derive(Default)]
pub(crate) struct Slot(RwLock<Option<(&'static str, Arc<dyn AiProvider>)>>);

/// Installs `provider` for `plugin`; an error naming the other provider if one is installed.
pub(crate) fn install(
    runtime: &Runtime,
    plugin: &'static str,
    provider: Arc<dyn AiProvider>,
) -> Result<(), String> {
    let slot = runtime.extension(Slot::default);
    let mut current = slot.0.write().unwrap_or_else(|poison| poison.into_inner());
    match &*current {
        // A restart of the same plugin replaces its own provider.
        Some((other, _)) if *other != plugin => Err(format!(
            "plugin `{other}` already provides the AI service; only one provider can be compiled in and enabled"
        )),
        _ => {
            *current = Some((plugin, provider));
            Ok(())
        }
    }
}

/// Plugin `P`'s handle on the AI service, from `context.ai()`. Cheap to clone.
pub struct Ai<P> {
    runtime: Runtime,
    user: Option<i64>,
    plugin: PhantomData<fn() -> P>,
}

impl<P> Clone for Ai<P> {
    fn clone(&self) -> Self {
        Ai {
            runtime: self.runtime.clone(),
            user: self.user,
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> std::fmt::Debug for Ai<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ai")
            .field("plugin", &P::NAME)
            .field("user", &self.user)
            .finish()
    }
}

impl<P: Plugin> Ai<P> {
    pub(crate) fn new(runtime: Runtime) -> Ai<P> {
        Ai {
            runtime,
            user: None,
            plugin: PhantomData,
        }
    }

    /// The same handle acting for person `user`: the calls count against their quota and
    /// appear in their usage as well as the plugin's.
    pub fn for_user(&self, user: i64) -> Ai<P> {
        Ai {
            user: Some(user),
            ..self.clone()
        }
    }

    fn caller(&self) -> Caller {
        Caller {
            plugin: P::NAME,
            user: self.user,
        }
    }

    /// The installed provider, if its plugin is running.
    fn provider(&self) -> Result<Arc<dyn AiProvider>, AiError> {
        let slot = self.runtime.extension(Slot::default);
        let current = slot.0.read().unwrap_or_else(|poison| poison.into_inner());
        let Some((plugin, provider)) = &*current else {
            return Err(AiError::Unavailable(
                "no AI provider is compiled in (build with the `ai` plugin)".into(),
            ));
        };
        match self.runtime.status(plugin) {
            Some(PluginStatus::Running) => Ok(Arc::clone(provider)),
            status => Err(AiError::Unavailable(format!(
                "the provider plugin `{plugin}` is not running ({})",
                status.map_or("unknown", |status| status.name())
            ))),
        }
    }

    /// A complete answer to `request`.
    pub async fn chat(&self, request: ChatRequest) -> Result<Completion, AiError> {
        self.provider()?.chat(self.caller(), request).await
    }

    /// The answer to `request` as it is generated.
    pub async fn stream(&self, request: ChatRequest) -> Result<ChunkStream, AiError> {
        self.provider()?.stream(self.caller(), request).await
    }

    /// The models the provider serves.
    pub async fn models(&self) -> Result<Vec<Model>, AiError> {
        self.provider()?.models().await
    }
}
