//! `chatload`: the client side of `cargo xtask bench chat` for what `wrk` cannot do. It
//! creates the benchmark's people and channel, times a message from its send to another
//! person's WebSocket, fans messages out to thousands of idle WebSockets, grows a channel to
//! a million stored messages, and times single requests. Each command prints one `RESULT`
//! line of `key=value` pairs that xtask reads; nothing here judges a figure.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// Every benchmark account's password.
const PASSWORD: &str = "benchpass-123";

#[derive(Parser)]
#[command(about = "The client side of cargo xtask bench chat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registers `users` people, creates a public channel and has everyone join it; writes
    /// `state.json`, `tokens.txt` (one access token a line; line 1 is the reader's) and
    /// `room.txt` (the channel's id) into `out`.
    Setup {
        #[arg(long)]
        base: String,
        #[arg(long, default_value_t = 17)]
        users: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Person B listens on the WebSocket, person A sends: the time from just before the
    /// send to B reading the frame, `iters` times (at most `max_seconds`).
    Latency {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value_t = 50)]
        iters: usize,
        #[arg(long, default_value_t = 20.0)]
        max_seconds: f64,
    },
    /// Opens `clients` WebSockets (the setup's people, several connections each) and keeps
    /// them idle, reads the server's memory, then sends `messages` messages one at a time
    /// and times each one's arrival on every connection.
    Fanout {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        messages: usize,
        /// The server's process id, whose resident memory is read.
        #[arg(long)]
        pid: u32,
    },
    /// Copies the channel's messages with their search terms (new ids, later sequence
    /// numbers) until it holds `messages`; run while the server is stopped.
    Seed {
        /// The server's database URL (`sqlite://…` or `postgres://…`).
        #[arg(long)]
        database: String,
        #[arg(long)]
        channel: i64,
        #[arg(long)]
        messages: i64,
    },
    /// `GET path` (with `{room}` replaced) `iters` times, one after the other, as the
    /// setup's reader: latency percentiles.
    Probe {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        path: String,
        #[arg(long, default_value_t = 200)]
        iters: usize,
    },
    /// Serves a webhook receiver on loopback, registers it (as the setup's first person, the
    /// server's admin) for every chat event, then has `senders` people post `messages`
    /// messages at once: the posting rate, deliveries per second, and each message's delay
    /// from its event's time to its delivery. Removes the endpoint afterwards.
    Webhooks {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        #[arg(long, default_value_t = 16)]
        senders: usize,
    },
    /// Posts one message as the setup's second person (for a word to search for).
    Post {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        body: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest's rustls needs a crypto provider even though every URL here is plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Setup { base, users, out } => setup(&base, users, &out).await,
            Command::Latency {
                state,
                iters,
                max_seconds,
            } => latency(&State::read(&state)?, iters, max_seconds).await,
            Command::Fanout {
                state,
                clients,
                messages,
                pid,
            } => fanout(State::read(&state)?, clients, messages, pid).await,
            Command::Seed {
                database,
                channel,
                messages,
            } => seed(&database, channel, messages).await,
            Command::Probe { state, path, iters } => {
                probe(&State::read(&state)?, &path, iters).await
            }
            Command::Webhooks {
                state,
                messages,
                senders,
            } => webhooks(&State::read(&state)?, messages, senders).await,
            Command::Post { state, body } => {
                let state = State::read(&state)?;
                let started = Instant::now();
                post(&reqwest::Client::new(), &state, 1, &body).await?;
                println!(
                    "RESULT post ms={:.2}",
                    started.elapsed().as_secs_f64() * 1000.0
                );
                Ok(())
            }
        }
    })
}

/// What `setup` wrote: the server, the channel, and each person's id and token.
struct State {
    base: String,
    room: i64,
    users: Vec<(i64, String)>,
}

impl State {
    fn read(path: &Path) -> anyhow::Result<State> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)?;
        let users = value["users"]
            .as_array()
            .context("state has no users")?
            .iter()
            .map(|user| {
                Some((
                    user["user_id"].as_i64()?,
                    user["token"].as_str()?.to_string(),
                ))
            })
            .collect::<Option<Vec<_>>>()
            .context("a user without user_id or token")?;
        ensure!(users.len() >= 2, "the benchmark needs at least two people");
        Ok(State {
            base: value["base"].as_str().context("no base")?.to_string(),
            room: value["room_id"].as_i64().context("no room_id")?,
            users,
        })
    }

    fn ws_url(&self) -> String {
        format!("{}/api/v1/ws", self.base.replacen("http", "ws", 1))
    }
}

/// Sends a JSON request and answers the JSON body of a 2xx, or fails with the status and body.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = client.request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "{method} {url}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn setup(base: &str, count: usize, out: &Path) -> anyhow::Result<()> {
    ensure!(count >= 2, "--users must be at least 2");
    let client = reqwest::Client::new();
    // A run's names are its own, so a second setup against the same database works.
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() % 0x00ff_ffff;
    let name = |i: usize| format!("b{run:x}u{i}");
    let started = Instant::now();
    let mut users = Vec::new();
    for i in 0..count {
        let answer = call(
            &client,
            reqwest::Method::POST,
            &format!("{base}/api/v1/auth/register"),
            None,
            Some(json!({"username": name(i), "password": PASSWORD})),
        )
        .await?;
        let id = answer["user"]["id"].as_i64().context("no user.id")?;
        let token = answer["access_token"].as_str().context("no access_token")?;
        users.push((id, token.to_string()));
    }
    let registered = started.elapsed();
    let started = Instant::now();
    call(
        &client,
        reqwest::Method::POST,
        &format!("{base}/api/v1/auth/login"),
        None,
        Some(json!({"username": name(0), "password": PASSWORD})),
    )
    .await?;
    let login = started.elapsed();
    let channel = call(
        &client,
        reqwest::Method::POST,
        &format!("{base}/api/v1/channels"),
        Some(&users[0].1),
        Some(json!({"kind": "public", "name": format!("bench-{run:x}")})),
    )
    .await?;
    let room = channel["id"].as_i64().context("no channel id")?;
    for (_, token) in &users[1..] {
        call(
            &client,
            reqwest::Method::POST,
            &format!("{base}/api/v1/channels/{room}/members"),
            Some(token),
            Some(json!({})),
        )
        .await?;
    }
    std::fs::create_dir_all(out)?;
    let state = json!({
        "base": base,
        "room_id": room,
        "users": users.iter().map(|(id, token)| json!({"user_id": id, "token": token})).collect::<Vec<_>>(),
    });
    std::fs::write(
        out.join("state.json"),
        serde_json::to_string_pretty(&state)?,
    )?;
    let tokens: String = users
        .iter()
        .map(|(_, token)| format!("{token}\n"))
        .collect();
    std::fs::write(out.join("tokens.txt"), tokens)?;
    std::fs::write(out.join("room.txt"), format!("{room}\n"))?;
    println!(
        "RESULT setup users={count} register_ms_each={:.1} login_ms={:.1} room={room}",
        registered.as_secs_f64() * 1000.0 / count as f64,
        login.as_secs_f64() * 1000.0
    );
    Ok(())
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket signed in as `token`, past its `ready` frame.
async fn connect(state: &State, token: &str) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async(state.ws_url())
        .await
        .context("WebSocket connect")?;
    socket
        .send(Message::text(
            json!({"type": "auth", "token": token}).to_string(),
        ))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), socket.next())
            .await
            .context("no ready frame within 30 s")?;
        match frame {
            Some(Ok(Message::Text(text))) if text.contains("\"ready\"") => return Ok(socket),
            Some(Ok(Message::Close(close))) => bail!("closed before ready: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("closed before ready"),
        }
    }
}

/// Posts `body` into the channel as person `who`, with an idempotency key as a client would.
async fn post(
    client: &reqwest::Client,
    state: &State,
    who: usize,
    body: &str,
) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/channels/{}/messages", state.base, state.room);
    let response = client
        .post(&url)
        .bearer_auth(&state.users[who].1)
        .header("Idempotency-Key", idempotency_key(body))
        .json(&json!({"body": body}))
        .send()
        .await?;
    let status = response.status();
    ensure!(
        status.is_success(),
        "POST {url}: {status} {}",
        response.text().await?
    );
    Ok(())
}

/// A key for `body` (which is unique per send here) in the header's alphabet.
fn idempotency_key(body: &str) -> String {
    body.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(255)
        .collect()
}

/// The `p`th percentile of sorted `values`, as the harness's scripts compute it.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn run_id() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.as_nanos() % 1_000_000_007)
        .unwrap_or(0)
}

async fn latency(state: &State, iters: usize, max_seconds: f64) -> anyhow::Result<()> {
    let mut socket = connect(state, &state.users[0].1).await?;
    let (frames, mut arrived) = mpsc::unbounded_channel::<(String, Instant)>();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Text(text) = frame
                && text.contains("\"message.created\"")
                && frames.send((text.to_string(), Instant::now())).is_err()
            {
                break;
            }
        }
    });
    let client = reqwest::Client::new();
    let run = run_id();
    let started = Instant::now();
    let (mut to_frame, mut after_ack) = (Vec::new(), Vec::new());
    for i in 0..iters {
        if started.elapsed().as_secs_f64() > max_seconds {
            break;
        }
        let marker = format!("latency{run}x{i}");
        // As the harness does: a pause, so the listener is waiting rather than busy.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sent = Instant::now();
        post(&client, state, 1, &marker).await?;
        let acknowledged = Instant::now();
        let deadline = sent + Duration::from_secs(35);
        loop {
            match tokio::time::timeout_at(deadline.into(), arrived.recv()).await {
                Ok(Some((text, at))) if text.contains(&marker) => {
                    to_frame.push((at - sent).as_secs_f64() * 1000.0);
                    after_ack
                        .push(at.saturating_duration_since(acknowledged).as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) => bail!("the WebSocket closed"),
                Err(_) => break,
            }
        }
    }
    ensure!(!to_frame.is_empty(), "no message arrived on the WebSocket");
    let n = to_frame.len();
    let average = mean(&to_frame);
    let all = sorted(to_frame);
    let after_ack = sorted(after_ack);
    println!(
        "RESULT send_to_ws n={n} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} mean_ms={average:.2} ack_to_ws_p50_ms={:.2}",
        percentile(&all, 50.0),
        percentile(&all, 90.0),
        percentile(&all, 99.0),
        all[all.len() - 1],
        percentile(&after_ack, 50.0),
    );
    Ok(())
}

/// A process's `VmRSS` and `VmHWM`, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} for process {pid}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The message index in a frame carrying `fanout-<index>-<run>`.
fn fanout_index(text: &str, tag: &str) -> Option<usize> {
    let rest = &text[text.find(tag)? + tag.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

async fn fanout(state: State, clients: usize, messages: usize, pid: u32) -> anyhow::Result<()> {
    let (rss_before, _) = memory_kib(pid)?;
    let run = run_id();
    let tag: Arc<str> = format!("fanout{run}n").into();
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<(usize, Instant)>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<anyhow::Result<()>>();
    // Connect a few hundred at a time, as clients arriving in a burst would.
    let gate = Arc::new(Semaphore::new(256));
    let connected = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let state = Arc::new(state);
    for client in 0..clients {
        let (state, gate, tag) = (Arc::clone(&state), Arc::clone(&gate), Arc::clone(&tag));
        let (arrivals, ready_tx, connected) =
            (arrivals.clone(), ready_tx.clone(), Arc::clone(&connected));
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let token = &state.users[client % state.users.len()].1;
            let mut socket = match connect(&state, token).await {
                Ok(socket) => socket,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            drop(permit);
            connected.fetch_add(1, Ordering::Relaxed);
            let _ = ready_tx.send(Ok(()));
            while let Some(Ok(frame)) = socket.next().await {
                if let Message::Text(text) = frame
                    && let Some(index) = fanout_index(&text, &tag)
                    && arrivals.send((index, Instant::now())).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..clients {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(error)) => bail!(
                "connection {} of {clients} failed: {error:#}",
                connected.load(Ordering::Relaxed) + 1
            ),
            None => bail!("the connecting tasks ended early"),
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    // Idle for a moment, so the memory read is of connections at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_connected, _) = memory_kib(pid)?;
    let client = reqwest::Client::new();
    let mut deliveries = Vec::new();
    let mut to_all = Vec::new();
    let mut delivered = 0;
    for index in 0..messages {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body = format!("{tag}{index} lorem ipsum");
        let sent = Instant::now();
        post(&client, &state, 1, &body).await?;
        let deadline = sent + Duration::from_secs(30);
        let mut count = 0;
        let mut last = sent;
        while count < clients {
            match tokio::time::timeout_at(deadline.into(), arrived.recv()).await {
                Ok(Some((i, at))) if i == index => {
                    count += 1;
                    last = at;
                    deliveries.push((at - sent).as_secs_f64() * 1000.0);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        delivered += count;
        to_all.push((last - sent).as_secs_f64() * 1000.0);
    }
    let (_, peak) = memory_kib(pid)?;
    let all = sorted(deliveries);
    let to_all = sorted(to_all);
    println!(
        "RESULT fanout clients={clients} connect_s={connect_seconds:.2} rss_before_kib={rss_before} rss_connected_kib={rss_connected} kib_per_client={:.1} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} to_all_p50_ms={:.2} delivered={delivered} expected={} peak_rss_kib={peak}",
        rss_connected.saturating_sub(rss_before) as f64 / clients.max(1) as f64,
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all.last().copied().unwrap_or(f64::NAN),
        percentile(&to_all, 50.0),
        clients * messages,
    );
    Ok(())
}

async fn seed(database: &str, channel: i64, target: i64) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let postgres = database.starts_with("postgres");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database)
        .await
        .with_context(|| "cannot open the database")?;
    let started = Instant::now();
    loop {
        let (count, max_seq, max_id): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(MAX(seq), 0), COALESCE(MAX(id), 0) \
             FROM channels_messages WHERE channel_id = $1",
        )
        .bind(channel)
        .fetch_one(&pool)
        .await?;
        ensure!(count > 0, "channel {channel} has no messages to copy");
        if count >= target {
            break;
        }
        let (all_max_id,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM channels_messages")
                .fetch_one(&pool)
                .await?;
        // The newest `take` live messages are copied after the channel's last event, each
        // with its search terms, so the copies are found exactly as the originals are.
        let take = (target - count).min(count);
        let (first_id,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM channels_messages \
             WHERE channel_id = $1 ORDER BY id DESC LIMIT $2) newest",
        )
        .bind(channel)
        .bind(take)
        .fetch_one(&pool)
        .await?;
        let id_offset = all_max_id - first_id + 1;
        let seq_offset = max_seq;
        let mut tx = pool.begin().await?;
        // PostgreSQL's identity column takes given ids only when told to. The text joins
        // constants only (the values are bound), hence safe.
        let overriding = if postgres {
            "OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO channels_messages (id, channel_id, seq, author_id, body, thread_root_id, \
             reply_count, file_ids, created_ms, edited_ms, deleted_ms) {overriding} \
             SELECT id + $1, channel_id, seq + $2, author_id, body, NULL, 0, '', created_ms, \
             NULL, NULL FROM channels_messages WHERE channel_id = $3 AND id >= $4 AND id <= $5"
        )))
        .bind(id_offset)
        .bind(seq_offset)
        .bind(channel)
        .bind(first_id)
        .bind(max_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO channels_search (term, message_id, channel_id) \
             SELECT term, message_id + $1, channel_id FROM channels_search \
             WHERE channel_id = $2 AND message_id >= $3 AND message_id <= $4",
        )
        .bind(id_offset)
        .bind(channel)
        .bind(first_id)
        .bind(max_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE channels_channels SET last_seq = \
             (SELECT MAX(seq) FROM channels_messages WHERE channel_id = $1) WHERE id = $1",
        )
        .bind(channel)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        eprintln!("chatload: {} messages", count + take);
    }
    if postgres {
        // The identity continues after the copies, so the server's next message fits.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('channels_messages', 'id'), \
             (SELECT MAX(id) FROM channels_messages))",
        )
        .execute(&pool)
        .await?;
    }
    // Both engines plan from statistics: refresh them, as a server that grew slowly has.
    sqlx::query("ANALYZE").execute(&pool).await?;
    println!(
        "RESULT seed messages={target} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn probe(state: &State, path: &str, iters: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}{}",
        state.base,
        path.replace("{room}", &state.room.to_string())
    );
    // One request first, so the connection and the server's caches are warm.
    call(
        &client,
        reqwest::Method::GET,
        &url,
        Some(&state.users[0].1),
        None,
    )
    .await?;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..iters {
        let started = Instant::now();
        let response = client
            .get(&url)
            .bearer_auth(&state.users[0].1)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(status.is_success(), "GET {url}: {status}");
        bytes = body.len();
    }
    let all = sorted(times);
    println!(
        "RESULT probe n={iters} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} bytes={bytes}",
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all[all.len() - 1],
    );
    Ok(())
}

/// One delivery as the receiver saw it: when it arrived and when its event happened, in
/// milliseconds since the epoch, and whether it was a posted message.
struct Arrival {
    at_ms: f64,
    event_ms: f64,
    message: bool,
}

/// A minimal HTTP/1.1 receiver: reads each request (keep-alive), answers 200 at once and
/// reports it.
async fn receive(listener: tokio::net::TcpListener, arrivals: mpsc::UnboundedSender<Arrival>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                let at_ms = now_ms();
                let body: Value =
                    serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap_or_default();
                buffer.drain(..end + 4 + length);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let event_ms = body["data"]["at"]
                    .as_str()
                    .and_then(|at| at.parse::<jiff::Timestamp>().ok())
                    .map_or(f64::NAN, |at| at.as_millisecond() as f64);
                let _ = arrivals.send(Arrival {
                    at_ms,
                    event_ms,
                    message: body["data"]["kind"] == "message.created",
                });
            }
        });
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}

async fn webhooks(state: &State, messages: usize, senders: usize) -> anyhow::Result<()> {
    ensure!(
        senders >= 1 && senders < state.users.len(),
        "--senders must be 1 to {}",
        state.users.len() - 1
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (sender, mut arrivals) = mpsc::unbounded_channel();
    let receiver = tokio::spawn(receive(listener, sender));
    let client = reqwest::Client::new();
    let admin = &state.users[0].1;
    let endpoint = call(
        &client,
        reqwest::Method::POST,
        &format!("{}/api/v1/webhooks", state.base),
        Some(admin),
        Some(json!({
            "url": format!("http://127.0.0.1:{port}/hook"),
            "event_types": ["channels.event"],
        })),
    )
    .await
    .context("registering the endpoint (the server must allow 127.0.0.1)")?;
    let endpoint_id = endpoint["id"].as_i64().context("no endpoint id")?;

    let started = Instant::now();
    let started_ms = now_ms();
    let per_sender = messages.div_ceil(senders);
    let mut posting = Vec::new();
    for sender in 1..=senders {
        let (client, base, room, token) = (
            client.clone(),
            state.base.clone(),
            state.room,
            state.users[sender].1.clone(),
        );
        posting.push(tokio::spawn(async move {
            for n in 0..per_sender {
                call(
                    &client,
                    reqwest::Method::POST,
                    &format!("{base}/api/v1/channels/{room}/messages"),
                    Some(&token),
                    Some(json!({ "body": format!("webhook benchmark {sender}-{n}") })),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in posting {
        task.await??;
    }
    let posted = per_sender * senders;
    let posting_s = started.elapsed().as_secs_f64();

    let mut delays = Vec::with_capacity(posted);
    let mut last_ms = started_ms;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delays.len() < posted {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(arrival)) = tokio::time::timeout(wait, arrivals.recv()).await else {
            break;
        };
        if arrival.message {
            delays.push(arrival.at_ms - arrival.event_ms);
            last_ms = arrival.at_ms;
        }
    }
    receiver.abort();
    call(
        &client,
        reqwest::Method::DELETE,
        &format!("{}/api/v1/webhooks/{endpoint_id}", state.base),
        Some(admin),
        None,
    )
    .await?;
    ensure!(
        delays.len() == posted,
        "{} of {posted} messages were delivered within 120 s",
        delays.len()
    );
    delays.sort_by(f64::total_cmp);
    let pick = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "RESULT webhooks messages={posted} posted_per_s={:.1} delivered_per_s={:.1} delay_p50_ms={:.1} delay_p99_ms={:.1} delay_max_ms={:.1}",
        posted as f64 / posting_s,
        posted as f64 / ((last_ms - started_ms) / 1000.0),
        pick(0.5),
        pick(0.99),
        pick(1.0),
    );
    Ok(())
}
