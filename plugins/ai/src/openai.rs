//! The OpenAI-compatible client: `POST {base}/chat/completions` whole or as server-sent
//! events, `GET {base}/models`; retries on 429 (waiting its `Retry-After`), 5xx and failed
//! connections with jittered backoff, all within the configured time.

use std::future::Future;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use plexichat::ai::{AiError, ChatChunk, ChatRequest, ChunkStream, Completion, Model, Usage};
use plexichat::extract::Bytes;
use plexichat::http_client::{self, HttpClient};
use plexichat::prelude::*;
use plexichat::reqwest::{RequestBuilder, Response};
use tokio::time::Instant;

use crate::usage::Spent;
use crate::{Ai, AiConfig};

/// The most of an answer (not streamed) read; an OpenAI answer is far smaller.
const MAX_ANSWER: usize = 4 << 20;
/// The most of an error answer quoted.
const MAX_QUOTE: usize = 300;
/// The most of an error answer read.
const MAX_ERROR_BODY: usize = 8 << 10;

pub(crate) struct Client {
    http: HttpClient<Ai>,
}

impl Client {
    pub(crate) fn new(http: HttpClient<Ai>) -> Client {
        Client { http }
    }

    fn authorised(&self, builder: RequestBuilder, config: &AiConfig) -> RequestBuilder {
        match &config.api_key {
            Some(key) => builder.bearer_auth(key.expose()),
            None => builder,
        }
    }

    /// Sends what `build` makes until it succeeds, retrying what is worth retrying, until
    /// `deadline`.
    async fn send(
        &self,
        config: &AiConfig,
        deadline: Instant,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, AiError> {
        let total = Duration::from_secs(u64::from(config.timeout_seconds));
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(AiError::Timeout(total));
            }
            let (failure, wait) = match self
                .authorised(build(), config)
                .timeout(remaining)
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = http_client::retry_after(response.headers());
                    let said = quote(response).await;
                    match status.as_u16() {
                        429 | 500.. => (
                            AiError::Provider {
                                status: Some(status.as_u16()),
                                message: said,
                                retry_after,
                            },
                            retry_after.unwrap_or_else(|| backoff(attempt)),
                        ),
                        // The server's credentials are the operator's business: the person
                        // asking is told no more than that, the log says the rest.
                        401 | 403 => {
                            plexichat::tracing::warn!(%status, "the AI server refused this server's credentials: {said}");
                            return Err(AiError::Provider {
                                status: Some(status.as_u16()),
                                message: "the AI server refused this server's credentials; an operator should check `[plugins.ai] api_key`".into(),
                                retry_after: None,
                            });
                        }
                        400 | 404 | 413 | 422 => {
                            return Err(AiError::Rejected {
                                status: status.as_u16(),
                                message: said,
                            });
                        }
                        _ => {
                            return Err(AiError::Provider {
                                status: Some(status.as_u16()),
                                message: said,
                                retry_after,
                            });
                        }
                    }
                }
                Err(error) if error.is_timeout() => return Err(AiError::Timeout(total)),
                Err(error) => (
                    AiError::Provider {
                        status: None,
                        message: format!("cannot reach the AI server: {}", describe(error)),
                        retry_after: None,
                    },
                    backoff(attempt),
                ),
            };
            if attempt >= config.max_attempts || wait >= remaining {
                return Err(failure);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn body(request: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "stream": stream,
        });
        if let Some(model) = &request.model {
            body["model"] = json!(model);
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }

    pub(crate) async fn chat(
        &self,
        config: &AiConfig,
        base: &str,
        request: &ChatRequest,
    ) -> Result<Completion, AiError> {
        let deadline = deadline(config);
        let url = join(base, "chat/completions");
        let body = Client::body(request, false);
        let response = self
            .send(config, deadline, || self.http.post(&url).json(&body))
            .await?;
        let answer = read_json(response, deadline, config).await?;
        let choice = &answer["choices"][0];
        let content = choice["message"]["content"]
            .as_str()
            .ok_or_else(|| malformed("the answer has no `choices[0].message.content`"))?;
        Ok(Completion {
            id: text(&answer["id"]),
            model: answer["model"]
                .as_str()
                .map_or_else(|| request.model.clone().unwrap_or_default(), str::to_owned),
            content: content.to_owned(),
            finish_reason: text(&choice["finish_reason"]),
            usage: usage(&answer["usage"]).unwrap_or_default(),
        })
    }

    /// Streams the answer; `settle` runs once with what was spent, when the stream ends, fails
    /// or is dropped by its reader.
    pub(crate) async fn stream(
        &self,
        config: &AiConfig,
        base: &str,
        request: &ChatRequest,
        spent: Spent,
        settle: Settler,
    ) -> Result<ChunkStream, AiError> {
        let deadline = deadline(config);
        let url = join(base, "chat/completions");
        let body = Client::body(request, true);
        let mut guard = Settle {
            settle: Some(settle),
            spent,
        };
        let response = match self
            .send(config, deadline, || self.http.post(&url).json(&body))
            .await
        {
            Ok(response) => response,
            Err(error) => {
                guard.finish().await;
                return Err(error);
            }
        };
        // The server took the request: from here on it costs, whatever becomes of it.
        guard.spent.started = true;
        let state = Reader {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            scanned: 0,
            finish_reason: None,
            deadline,
            total: Duration::from_secs(u64::from(config.timeout_seconds)),
            guard,
            ended: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(state, Reader::next)))
    }

    pub(crate) async fn models(
        &self,
        config: &AiConfig,
        base: &str,
    ) -> Result<Vec<Model>, AiError> {
        let deadline = deadline(config);
        let url = join(base, "models");
        let response = self.send(config, deadline, || self.http.get(&url)).await?;
        let answer = read_json(response, deadline, config).await?;
        let listed = answer["data"]
            .as_array()
            .ok_or_else(|| malformed("the model list has no `data` array"))?;
        let models: Vec<Model> = listed
            .iter()
            .filter_map(|model| {
                Some(Model {
                    id: model["id"].as_str()?.to_owned(),
                    owned_by: text(&model["owned_by"]),
                    default: false,
                })
            })
            .collect();
        // Which is the default, and which are offered, is the provider's to say.
        Ok(models)
    }

    /// Whether `GET {base}/models` answers, within two seconds and without retries.
    pub(crate) async fn reachable(&self, config: &AiConfig, base: &str) -> Result<(), AiError> {
        let response = self
            .authorised(self.http.get(join(base, "models")), config)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|error| AiError::Provider {
                status: None,
                message: format!("cannot reach the AI server: {}", describe(error)),
                retry_after: None,
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(AiError::Provider {
                status: Some(response.status().as_u16()),
                message: quote(response).await,
                retry_after: None,
            })
        }
    }
}

/// What records a request's spending; see [`Client::stream`].
pub(crate) type Settler =
    Box<dyn FnOnce(Spent) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Runs its [`Settler`] exactly once: at the end of the stream, or when it is dropped
/// unfinished.
struct Settle {
    settle: Option<Settler>,
    spent: Spent,
}

impl Settle {
    async fn finish(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(self.spent.clone()).await;
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        // The reader went away mid-answer (the person closed the page): record what the
        // server generated so far, on a task, since `drop` cannot wait.
        if let Some(settle) = self.settle.take() {
            let mut spent = self.spent.clone();
            spent.failed = true;
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(settle(spent));
            }
        }
    }
}

/// The state of a streamed answer being read.
struct Reader {
    body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, plexichat::reqwest::Error>> + Send>>,
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no complete event.
    scanned: usize,
    finish_reason: Option<String>,
    deadline: Instant,
    total: Duration,
    guard: Settle,
    ended: bool,
}

impl Reader {
    async fn next(mut self) -> Option<(Result<ChatChunk, AiError>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(data) = next_event(&mut self.buffer, &mut self.scanned) {
                if data == "[DONE]" {
                    return self.end().await;
                }
                let Ok(chunk) = plexichat::serde_json::from_str::<Value>(&data) else {
                    return self.fail(malformed("an event is not JSON")).await;
                };
                if let Some(model) = chunk["model"].as_str() {
                    model.clone_into(&mut self.guard.spent.model);
                }
                if let Some(usage) = usage(&chunk["usage"]) {
                    self.guard.spent.usage = usage;
                }
                let choice = &chunk["choices"][0];
                if let Some(reason) = choice["finish_reason"].as_str() {
                    self.finish_reason = Some(reason.to_owned());
                }
                match choice["delta"]["content"].as_str() {
                    Some(delta) if !delta.is_empty() => {
                        // Each piece is about a token: the estimate if the server never says.
                        self.guard.spent.streamed += 1;
                        let chunk = ChatChunk {
                            delta: delta.to_owned(),
                            ..ChatChunk::default()
                        };
                        return Some((Ok(chunk), self));
                    }
                    _ => continue,
                }
            }
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.body.next()).await {
                Err(_) => {
                    let total = self.total;
                    return self.fail(AiError::Timeout(total)).await;
                }
                Ok(Some(Ok(bytes))) => {
                    // Events end with a blank line, `\n\n` or `\r\n\r\n`; JSON never holds a
                    // bare carriage return, so dropping them leaves one separator.
                    self.buffer
                        .extend(bytes.iter().filter(|&&byte| byte != b'\r'));
                    if self.buffer.len() > MAX_ANSWER {
                        return self.fail(malformed("an event is larger than 4 MiB")).await;
                    }
                }
                Ok(Some(Err(error))) => {
                    let failure = AiError::Provider {
                        status: None,
                        message: format!("the answer broke off: {}", describe(error)),
                        retry_after: None,
                    };
                    return self.fail(failure).await;
                }
                // Ended without `[DONE]`: complete if the model had finished.
                Ok(None) if self.finish_reason.is_some() => return self.end().await,
                Ok(None) => {
                    return self
                        .fail(malformed("the answer ended before the model finished"))
                        .await;
                }
            }
        }
    }

    /// The last chunk: why generation stopped and what it used.
    async fn end(mut self) -> Option<(Result<ChatChunk, AiError>, Self)> {
        self.ended = true;
        let spent = &mut self.guard.spent;
        spent.failed = false;
        let chunk = ChatChunk {
            delta: String::new(),
            finish_reason: Some(self.finish_reason.take().unwrap_or_else(|| "stop".into())),
            usage: Some(spent.charged()),
        };
        self.guard.finish().await;
        Some((Ok(chunk), self))
    }

    async fn fail(mut self, error: AiError) -> Option<(Result<ChatChunk, AiError>, Self)> {
        self.ended = true;
        self.guard.spent.failed = true;
        self.guard.finish().await;
        Some((Err(error), self))
    }
}

/// The data of the next complete event in `buffer`, removed from it; comments and other
/// fields are skipped, and an event without data yields nothing. `scanned` keeps how far
/// earlier calls searched, so each byte is searched about once.
fn next_event(buffer: &mut Vec<u8>, scanned: &mut usize) -> Option<String> {
    loop {
        // `scanned` bytes held no event end when last searched; the separator may straddle
        // their end, hence one byte back.
        let from = scanned.saturating_sub(1).min(buffer.len());
        let Some(end) = buffer[from..].windows(2).position(|pair| pair == b"\n\n") else {
            *scanned = buffer.len();
            return None;
        };
        let end = from + end;
        *scanned = 0;
        let event: Vec<u8> = buffer.drain(..end + 2).collect();
        let event = String::from_utf8_lossy(&event);
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        if !data.is_empty() {
            return Some(data.join("\n"));
        }
    }
}

fn deadline(config: &AiConfig) -> Instant {
    Instant::now() + Duration::from_secs(u64::from(config.timeout_seconds))
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

/// 0.5 s doubling per attempt, at most 8 s, each between half and all of it.
fn backoff(attempt: u32) -> Duration {
    let full = (0.5
        * 2f64.powi(
            i32::try_from(attempt.saturating_sub(1))
                .unwrap_or(30)
                .min(30),
        ))
    .min(8.0);
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).expect("the operating system's random generator failed");
    let random = f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX);
    Duration::from_secs_f64(full / 2.0 + full / 2.0 * random)
}

fn usage(value: &Value) -> Option<Usage> {
    let count = |key: &str| value[key].as_u64();
    let prompt_tokens = count("prompt_tokens")?;
    let completion_tokens = count("completion_tokens").unwrap_or(0);
    Some(Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: count("total_tokens").unwrap_or(prompt_tokens + completion_tokens),
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn malformed(what: &str) -> AiError {
    AiError::Provider {
        status: None,
        message: format!("the AI server's answer is not OpenAI's format: {what}"),
        retry_after: None,
    }
}

/// An answer's JSON, read within `deadline` and [`MAX_ANSWER`].
async fn read_json(
    mut response: Response,
    deadline: Instant,
    config: &AiConfig,
) -> Result<Value, AiError> {
    let mut body = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, response.chunk()).await {
            Err(_) => {
                return Err(AiError::Timeout(Duration::from_secs(u64::from(
                    config.timeout_seconds,
                ))));
            }
            Ok(Ok(Some(chunk))) => {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(malformed("the answer is larger than 4 MiB"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => break,
            Ok(Err(error)) => {
                return Err(AiError::Provider {
                    status: None,
                    message: format!("the answer broke off: {}", describe(error)),
                    retry_after: None,
                });
            }
        }
    }
    plexichat::serde_json::from_slice(&body).map_err(|_| malformed("the answer is not JSON"))
}

/// What an error answer says: OpenAI's `error.message`, or the start of its text.
async fn quote(mut response: Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    let text = String::from_utf8_lossy(&body).into_owned();
    let said = plexichat::serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| {
            body["error"]["message"]
                .as_str()
                .or_else(|| body["error"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or(text);
    let said: String = said.chars().take(MAX_QUOTE).collect();
    format!("the AI server answered {status}: {}", said.trim())
}

/// A request's error with its causes, which say what actually failed (refused, DNS, TLS),
/// without the URL: people read it, and the AI server's address is the operator's.
fn describe(error: plexichat::reqwest::Error) -> String {
    source_chain(&error.without_url())
}

/// An error with its causes.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_with_comments_skipped() {
        let mut buffer = b": ping\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\ndata: par".to_vec();
        let mut scanned = 0;
        assert_eq!(
            next_event(&mut buffer, &mut scanned).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            next_event(&mut buffer, &mut scanned).as_deref(),
            Some("[DONE]")
        );
        assert_eq!(next_event(&mut buffer, &mut scanned), None);
        assert_eq!(buffer, b"data: par");
        // The rest arrives, its separator straddling what was already searched.
        buffer.extend_from_slice(b"t\n");
        assert_eq!(next_event(&mut buffer, &mut scanned), None);
        buffer.extend_from_slice(b"\n");
        assert_eq!(
            next_event(&mut buffer, &mut scanned).as_deref(),
            Some("part")
        );
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut buffer = b"event: x\ndata: one\ndata:two\n\n".to_vec();
        assert_eq!(next_event(&mut buffer, &mut 0).as_deref(), Some("one\ntwo"));
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..40 {
            let wait = backoff(attempt).as_secs_f64();
            let full = (0.5 * 2f64.powi(i32::try_from(attempt).unwrap() - 1)).min(8.0);
            assert!(
                wait >= full / 2.0 - 1e-9 && wait <= full + 1e-9,
                "{attempt}: {wait}"
            );
        }
    }
}
