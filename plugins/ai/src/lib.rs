//! `ai`: the AI service's provider. Every `context.ai()` call of every plugin, and
//! `/api/v1/ai/…` for people, goes to one OpenAI-compatible server (`[plugins.ai] base_url`:
//! OpenAI, a llama.cpp or vLLM server, Ollama's `/v1`): retried on 429 (after its
//! `Retry-After`), 5xx and failed connections, bounded in time, counted per day against the
//! calling person's and plugin's token quotas, and recorded in `ai_usage` and to analytics.
//!
//! Without `base_url` the plugin runs and every call answers `ai_unavailable`, saying what
//! to set.

pub mod api;
mod openai;
mod usage;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use accounts::Accounts;
use plexichat::ai::{
    AiError, AiFuture, AiProvider, Caller, ChatRequest, ChunkStream, Completion, Model,
};
use plexichat::prelude::*;
use plexichat::secret::Secret;

/// Chat completions from an OpenAI-compatible server, with retries, quotas and usage.
#[plugin(
    author = "PlexiChat",
    type = core,
    dependencies = [Accounts],
    permissions = ["ai", "analytics", "database", "http:client", "services:provide"],
    migrations = "migrations",
    config = AiConfig,
    lifecycle = true,
    tags = ["ai", "services"],
)]
#[derive(Default)]
pub struct Ai {
    /// Its context, set when it starts.
    context: OnceLock<PluginContext<Ai>>,
    /// People's requests per minute.
    limiter: api::PersonLimiter,
}

/// `[plugins.ai]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiConfig {
    /// The OpenAI-compatible API's base URL, ending before `/chat/completions`, e.g.
    /// `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`. Unset: AI is unavailable.
    pub base_url: Option<String>,
    /// Sent as `Authorization: Bearer …`; never logged or shown.
    pub api_key: Option<Secret>,
    /// The model used when a request names none; unset: the first `GET {base_url}/models`
    /// lists (or of `allowed_models`).
    pub model: Option<String>,
    /// The models people and plugins may name (besides `model`); empty: any.
    pub allowed_models: Vec<String>,
    /// The longest a request may take, retries included, in seconds.
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: u32,
    /// Attempts per request: a 429, a 5xx or a failed connection is tried again, up to this.
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
    /// The most tokens one answer may have; also the default when a request says none.
    #[schemars(range(min = 1, max = 1000000))]
    pub max_tokens: u32,
    /// The longest conversation a request may send, in characters.
    #[schemars(range(min = 1, max = 10000000))]
    pub max_input_chars: u32,
    /// Tokens (sent and generated) one person may use per day (UTC); 0: no limit.
    pub user_tokens_per_day: u64,
    /// Tokens each plugin may use per day, people's requests through it included; 0: no
    /// limit.
    pub plugin_tokens_per_day: u64,
    /// Requests one person may make per minute through `/api/v1/ai/chat` (a burst of as
    /// many, then one every `60 / n` seconds).
    #[schemars(range(min = 1, max = 100000))]
    pub user_requests_per_minute: u32,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            base_url: None,
            api_key: None,
            model: None,
            allowed_models: Vec::new(),
            timeout_seconds: 120,
            max_attempts: 3,
            max_tokens: 1024,
            max_input_chars: 32_000,
            user_tokens_per_day: 200_000,
            plugin_tokens_per_day: 0,
            user_requests_per_minute: 20,
        }
    }
}

impl Lifecycle for Ai {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let _ = self.context.set(context.clone());
        context.provide_ai(Arc::new(Provider {
            context: context.clone(),
            client: openai::Client::new(context.http()),
            reservations: usage::Reservations::default(),
            models: Mutex::new(None),
        }))?;
        Ok(())
    }
}

/// How long the model list is kept: a new model shows within a minute.
const MODELS_FOR: Duration = Duration::from_secs(60);

/// The provider other plugins reach through `context.ai()`.
struct Provider {
    context: PluginContext<Ai>,
    client: openai::Client,
    /// Tokens held by requests in flight, for the quotas.
    reservations: usage::Reservations,
    /// The server's models as last listed, and when, with the `base_url` they came from.
    models: Mutex<Option<(Instant, String, Vec<Model>)>>,
}

impl Provider {
    /// The current configuration, or why AI is unavailable.
    fn config(&self) -> Result<(Arc<AiConfig>, String), AiError> {
        let config = self.context.config::<Ai>().unwrap_or_default();
        let base = config.base_url.clone().ok_or_else(|| {
            AiError::Unavailable(
                "no AI server is configured: set `[plugins.ai] base_url` to an OpenAI-compatible API".into(),
            )
        })?;
        Ok((config, base))
    }

    /// The server's models, offered ones only, listed at most once a minute.
    async fn models(&self, config: &AiConfig, base: &str) -> Result<Vec<Model>, AiError> {
        let cached = self
            .models
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        let models = match cached {
            Some((at, from, models)) if at.elapsed() < MODELS_FOR && from == base => models,
            _ => {
                let models = self.client.models(config, base).await?;
                *self
                    .models
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()) =
                    Some((Instant::now(), base.to_owned(), models.clone()));
                models
            }
        };
        let offered = |model: &Model| {
            config.allowed_models.is_empty()
                || config.allowed_models.contains(&model.id)
                || config.model.as_ref() == Some(&model.id)
        };
        let mut models: Vec<Model> = models.into_iter().filter(offered).collect();
        let default = config
            .model
            .clone()
            .or_else(|| models.first().map(|model| model.id.clone()));
        for model in &mut models {
            model.default = Some(&model.id) == default.as_ref();
        }
        Ok(models)
    }

    /// Checks and reserves `request`, naming the default model when it names none.
    async fn admit(
        &self,
        config: &AiConfig,
        base: &str,
        caller: Caller,
        request: ChatRequest,
    ) -> Result<(ChatRequest, usage::Reservation), AiError> {
        let (mut request, reservation) =
            usage::admit(&self.context, config, &self.reservations, caller, request).await?;
        // The default model is the first the server lists. If it cannot list them, the
        // request goes without one (servers of a single model take that), and its own
        // failure, if any, is what the caller hears and what is recorded.
        if request.model.is_none()
            && let Ok(models) = self.models(config, base).await
        {
            request.model = models
                .into_iter()
                .find(|model| model.default)
                .map(|model| model.id);
        }
        Ok((request, reservation))
    }
}

impl AiProvider for Provider {
    fn chat(&self, caller: Caller, request: ChatRequest) -> AiFuture<'_, Completion> {
        Box::pin(async move {
            let (config, base) = self.config()?;
            let (request, reservation) = self.admit(&config, &base, caller, request).await?;
            let spent = usage::Spent::before(&request);
            let result = self.client.chat(&config, &base, &request).await;
            let spent = match &result {
                Ok(completion) => spent.of(completion),
                Err(_) => spent,
            };
            usage::settle(&self.context, caller, spent, reservation).await;
            result
        })
    }

    fn stream(&self, caller: Caller, request: ChatRequest) -> AiFuture<'_, ChunkStream> {
        Box::pin(async move {
            let (config, base) = self.config()?;
            let (request, reservation) = self.admit(&config, &base, caller, request).await?;
            let context = self.context.clone();
            let settle: openai::Settler = Box::new(move |spent| {
                Box::pin(async move { usage::settle(&context, caller, spent, reservation).await })
            });
            let spent = usage::Spent::before(&request);
            self.client
                .stream(&config, &base, &request, spent, settle)
                .await
        })
    }

    fn models(&self) -> AiFuture<'_, Vec<Model>> {
        Box::pin(async move {
            let (config, base) = self.config()?;
            Provider::models(self, &config, &base).await
        })
    }
}

/// Can the AI server be reached? Only when one is configured: `/ready` then answers 503
/// naming this plugin while it cannot.
#[health_check(readiness)]
async fn provider_reachable(context: &PluginContext<Ai>) -> Result<(), String> {
    let config = context.config::<Ai>().unwrap_or_default();
    let Some(base) = config.base_url.as_deref() else {
        return Ok(());
    };
    openai::Client::new(context.http())
        .reachable(&config, base)
        .await
        .map_err(|error| error.to_string())
}

impl Ai {
    /// The plugin's context, once it has started.
    pub(crate) fn context(&self) -> Result<&PluginContext<Ai>, ApiError> {
        self.context
            .get()
            .ok_or_else(|| ApiError::unavailable("ai has not started"))
    }
}
