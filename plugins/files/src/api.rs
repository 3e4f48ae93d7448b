//! `/api/v1/files/…`: uploading, reading a file's details and bytes, listing one's files,
//! deleting, and share links.

use std::path::{Path as FsPath, PathBuf};

use accounts::Caller;
use channels::{Access, Channels};
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use futures_util::StreamExt;
use plexichat::axum::extract::{FromRequest, Request};
use plexichat::extract::Body;
use plexichat::http::{HeaderMap, HeaderValue, header};
use plexichat::openapi::{Describer, InputDoc, OutputDoc};
use plexichat::prelude::*;
use plexichat::response::Response;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::store::{self, FileRow};
use crate::{Files, sniff};

/// A file's details.
#[payload(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// Its id.
    pub id: i64,
    /// Who uploaded it.
    pub owner_id: i64,
    /// Its name, as uploaded (cleaned of paths and control characters).
    pub name: String,
    /// Its type, from its first bytes: never HTML or SVG.
    pub content_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// When it was uploaded (RFC 3339).
    pub created_at: String,
    /// Where its bytes are: `GET` it with the access token.
    pub content_url: String,
}

impl FileInfo {
    fn of(row: &FileRow) -> FileInfo {
        FileInfo {
            id: row.id,
            owner_id: row.owner_id,
            name: row.name.clone(),
            content_type: row.content_type.clone(),
            size: row.size,
            sha256: row.sha256.clone(),
            created_at: store::rfc3339(row.created_ms),
            content_url: format!("/api/v1/files/{}/content", row.id),
        }
    }
}

fn file_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no file {id} that you can see")).with_code("file_not_found")
}

/// File `id`, if the caller may read it: they uploaded it, or it is attached in a channel
/// they may read. Otherwise "not found", as for a private channel.
async fn readable(
    files: &Files,
    channels: &Channels,
    id: i64,
    caller: &Caller,
) -> Result<FileRow, ApiError> {
    let pool = files.pool()?;
    let file = store::file(pool, id)
        .await?
        .ok_or_else(|| file_not_found(id))?;
    if file.owner_id == caller.user_id {
        return Ok(file);
    }
    for channel_id in store::grants(pool, id).await? {
        if channels.access(channel_id, caller.user_id).await? != Access::None {
            return Ok(file);
        }
    }
    Err(file_not_found(id))
}

/// A file name without folders or control characters, at most 255 bytes.
fn clean_name(given: Option<&str>) -> String {
    let base = given.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    while name.len() > 255 {
        name.pop();
    }
    if name.is_empty() || name == "." || name == ".." {
        "file".to_string()
    } else {
        name
    }
}

/// The request body of an upload, streamed.
pub struct Upload(Body);

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, _state: &S) -> Result<Upload, Self::Rejection> {
        Ok(Upload(request.into_body()))
    }
}

impl InputDoc for Upload {
    fn describe_input(describer: &mut Describer) {
        describer.body(
            "application/octet-stream",
            json!({ "type": "string", "format": "binary" }),
            true,
        );
    }
}

/// `POST /api/v1/files`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct UploadQuery {
    /// The file's name ("file" when absent).
    pub name: Option<String>,
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "a file is at most {limit} bytes here (`[plugins.files] max_upload_bytes`, and `[server] body_limit`)"
        ),
    )
    .with_code("file_too_large")
}

/// Removes a half-written upload when dropped, unless kept.
struct Incoming {
    path: PathBuf,
    kept: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Uploads a file: the request body is its bytes (any `Content-Type`; the type is taken
/// from the bytes). 201 with its details; 413 `file_too_large` over the size cap, 413
/// `quota_exceeded` past the caller's quota. The file is the caller's until they attach it
/// to a message.
#[route(POST, "/files")]
async fn upload(
    plugin: PluginState<Files>,
    config: PluginConfig<Files>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    Upload(body): Upload,
) -> Result<(StatusCode, Json<FileInfo>), ApiError> {
    let pool = plugin.pool()?;
    let limit = config.max_upload_bytes;
    let quota = i64::try_from(config.quota_bytes_per_user).unwrap_or(i64::MAX);
    let used = store::used(pool, caller.user_id).await?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared {
        if length > limit {
            return Err(too_large(limit));
        }
        if used.saturating_add(i64::try_from(length).unwrap_or(i64::MAX)) > quota {
            return Err(quota_exceeded(quota, used));
        }
    }
    let name = clean_name(query.name.as_deref());
    let root = plugin.root()?;
    let mut incoming = Incoming {
        path: root
            .join("incoming")
            .join(BASE64URL_NOPAD.encode(&random::<16>())),
        kept: false,
    };
    let mut file = tokio::fs::File::create(&incoming.path)
        .await
        .map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(512);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            if error.to_string().contains("length limit") {
                too_large(limit)
            } else {
                ApiError::bad_request(format!("the upload was cut short: {error}"))
            }
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        if head.len() < 512 {
            let wanted = (512 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.sync_all().await.map_err(ApiError::internal)?;
    drop(file);
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    if used.saturating_add(size) > quota {
        return Err(quota_exceeded(quota, used));
    }
    let row = store::insert(
        pool,
        caller.user_id,
        &name,
        sniff::sniff(&head),
        size,
        &HEXLOWER.encode(&hash.finalize()),
        store::now_ms(),
    )
    .await?;
    let blob = blob_path(root, row.id);
    if let Err(error) = tokio::fs::rename(&incoming.path, &blob).await {
        let _ = store::delete(pool, row.id).await;
        return Err(ApiError::internal(error));
    }
    incoming.kept = true;
    Ok((StatusCode::CREATED, Json(FileInfo::of(&row))))
}

fn quota_exceeded(quota: i64, used: i64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("this would pass your storage quota of {quota} bytes ({used} used); delete some files first"),
    )
    .with_code("quota_exceeded")
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes
}

fn blob_path(root: &FsPath, id: i64) -> PathBuf {
    root.join("blobs").join(id.to_string())
}

/// Path of a file.
#[payload(request)]
#[derive(Debug)]
pub struct FilePath {
    /// The file's id.
    pub id: i64,
}

/// A file's details: its uploader, or anyone who may read a channel it is attached in.
#[route(GET, "/files/{id}")]
async fn info(
    plugin: PluginState<Files>,
    channels: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<FilePath>,
) -> Result<Json<FileInfo>, ApiError> {
    let file = readable(&plugin, &channels, path.id, &caller).await?;
    Ok(Json(FileInfo::of(&file)))
}

/// A file's bytes, as an attachment (`Range` gives part of it: 206).
#[route(GET, "/files/{id}/content")]
async fn content(
    plugin: PluginState<Files>,
    channels: PluginState<Channels>,
    caller: Caller,
    headers: HeaderMap,
    Path(path): Path<FilePath>,
) -> Result<Download, ApiError> {
    let file = readable(&plugin, &channels, path.id, &caller).await?;
    serve(plugin.root()?, &file, &headers).await
}

/// The bytes of a file, with the headers that keep it from running in this origin.
pub struct Download(Response);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        self.0
    }
}

impl OutputDoc for Download {
    fn describe_output(describer: &mut Describer) {
        // Any type: the one sniffed from the bytes at upload (never HTML, SVG or XML).
        describer.response(
            "200",
            "the file's bytes, as the type sniffed from them at upload (206 with the part a \
             `Range` asked for)",
            Some(("*/*", json!({ "type": "string", "format": "binary" }))),
        );
    }
}

/// The single byte range `value` asks of `size` bytes: `Ok(None)` for the whole file (no
/// range, or several, which a server may answer whole), `Err` when it cannot be satisfied.
fn range(value: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Err(());
    };
    let (start, end) = match (start.trim(), end.trim()) {
        ("", "") => return Err(()),
        ("", suffix) => {
            let suffix: u64 = suffix.parse().map_err(|_| ())?;
            if suffix == 0 {
                return Err(());
            }
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        (start, "") => (start.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (start, end) => {
            let (start, end): (u64, u64) =
                (start.parse().map_err(|_| ())?, end.parse().map_err(|_| ())?);
            if end < start {
                return Err(());
            }
            (start, end.min(size.saturating_sub(1)))
        }
    };
    if size == 0 || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `filename*` per RFC 8187 and an ASCII `filename` for older clients.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn serve(root: &FsPath, file: &FileRow, request: &HeaderMap) -> Result<Download, ApiError> {
    let size = u64::try_from(file.size).unwrap_or(0);
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(&mut headers, header::CONTENT_TYPE, &file.content_type);
    set(
        &mut headers,
        header::CONTENT_DISPOSITION,
        &disposition(&file.name),
    );
    set(&mut headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        &mut headers,
        header::CONTENT_SECURITY_POLICY,
        "sandbox; default-src 'none'",
    );
    set(&mut headers, header::ACCEPT_RANGES, "bytes");
    set(&mut headers, header::ETAG, &format!("\"{}\"", file.sha256));
    set(&mut headers, header::CACHE_CONTROL, "private, max-age=3600");
    let wanted = match range(request.get(header::RANGE), size) {
        Ok(wanted) => wanted,
        Err(()) => {
            set(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            let error = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the file has {size} bytes; ask for a range inside them"),
            )
            .with_code("range_not_satisfiable");
            let mut response = error.into_response();
            response.headers_mut().extend(headers);
            return Ok(Download(response));
        }
    };
    let mut handle = tokio::fs::File::open(blob_path(root, file.id))
        .await
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                ApiError::unavailable("the file's bytes are missing from the data folder")
            } else {
                ApiError::internal(error)
            }
        })?;
    let (status, length) = match wanted {
        Some((start, end)) => {
            handle
                .seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(ApiError::internal)?;
            set(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{size}"),
            );
            (StatusCode::PARTIAL_CONTENT, end - start + 1)
        }
        None => (StatusCode::OK, size),
    };
    set(&mut headers, header::CONTENT_LENGTH, &length.to_string());
    let stream = tokio_util::io::ReaderStream::new(handle.take(length));
    Ok(Download(
        (status, headers, Body::from_stream(stream)).into_response(),
    ))
}

/// `GET /api/v1/files`' query.
#[payload(request)]
#[derive(Debug, Default)]
pub struct FileQuery {
    /// Only files with a smaller id: the `next_before` of the previous page.
    pub before: Option<i64>,
    /// At most this many (50 unless given, at most 200).
    pub limit: Option<i64>,
}

/// A page of files.
#[payload(response)]
#[derive(Debug)]
pub struct FilePage {
    /// Newest first.
    pub files: Vec<FileInfo>,
    /// Pass as `before` for the next page; absent on the last.
    pub next_before: Option<i64>,
    /// Bytes the caller stores.
    pub used_bytes: i64,
}

/// The caller's files.
#[route(GET, "/files")]
async fn list(
    plugin: PluginState<Files>,
    caller: Caller,
    Query(query): Query<FileQuery>,
) -> Result<Json<FilePage>, ApiError> {
    let pool = plugin.pool()?;
    let limit = match query.limit {
        None => 50,
        Some(limit) if (1..=200).contains(&limit) => limit,
        Some(_) => return Err(ApiError::invalid_field("limit", "`limit` is 1 to 200")),
    };
    let mut rows = store::files_of(
        pool,
        caller.user_id,
        query.before.unwrap_or(i64::MAX),
        limit + 1,
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok(Json(FilePage {
        next_before: more.then(|| rows.last().map(|row| row.id)).flatten(),
        files: rows.iter().map(FileInfo::of).collect(),
        used_bytes: store::used(pool, caller.user_id).await?,
    }))
}

/// Deletes a file (204): its uploader or an admin. Messages it was attached to keep its id,
/// which then answers 404.
#[route(DELETE, "/files/{id}")]
async fn delete(
    plugin: PluginState<Files>,
    channels: PluginState<Channels>,
    caller: Caller,
    Path(path): Path<FilePath>,
) -> Result<StatusCode, ApiError> {
    let file = readable(&plugin, &channels, path.id, &caller).await?;
    if file.owner_id != caller.user_id && !caller.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only its uploader or an admin may delete a file",
        )
        .with_code("forbidden"));
    }
    store::delete(plugin.pool()?, file.id).await?;
    match tokio::fs::remove_file(blob_path(plugin.root()?, file.id)).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(ApiError::internal(error)),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/files/{id}/shares`' body.
#[payload(request)]
#[derive(Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// Hours until the link stops working (24 unless given; at most `share_max_hours`).
    pub expires_in_hours: Option<u32>,
}

/// A share link.
#[payload(response)]
#[derive(Debug)]
pub struct Share {
    /// The link's path: anyone who has it downloads the file until it expires. Shown only
    /// now.
    pub url: String,
    /// When it stops working (RFC 3339).
    pub expires_at: String,
}

/// Makes a link that lets anyone download the file until it expires (its uploader only).
#[route(POST, "/files/{id}/shares")]
async fn share(
    plugin: PluginState<Files>,
    channels: PluginState<Channels>,
    config: PluginConfig<Files>,
    caller: Caller,
    Path(path): Path<FilePath>,
    body: Option<Json<ShareBody>>,
) -> Result<(StatusCode, Json<Share>), ApiError> {
    let file = readable(&plugin, &channels, path.id, &caller).await?;
    if file.owner_id != caller.user_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only its uploader may share a file by link",
        )
        .with_code("forbidden"));
    }
    let hours = body
        .and_then(|Json(body)| body.expires_in_hours)
        .unwrap_or(24);
    if hours == 0 || hours > config.share_max_hours {
        return Err(ApiError::invalid_field(
            "expires_in_hours",
            format!("`expires_in_hours` is 1 to {}", config.share_max_hours),
        ));
    }
    let token = format!("pxs_{}", BASE64URL_NOPAD.encode(&random::<32>()));
    let now = store::now_ms();
    let expires = now + i64::from(hours) * 3_600_000;
    store::create_share(
        plugin.pool()?,
        &HEXLOWER.encode(&Sha256::digest(token.as_bytes())),
        file.id,
        caller.user_id,
        now,
        expires,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Share {
            url: format!("/api/v1/files/shared/{token}"),
            expires_at: store::rfc3339(expires),
        }),
    ))
}

/// Path of a share link.
#[payload(request)]
#[derive(Debug)]
pub struct SharePath {
    /// The link's token.
    pub token: String,
}

/// The file a share link gives, to anyone, until it expires (404 after).
#[route(GET, "/files/shared/{token}")]
async fn shared(
    plugin: PluginState<Files>,
    headers: HeaderMap,
    Path(path): Path<SharePath>,
) -> Result<Download, ApiError> {
    let hash = HEXLOWER.encode(&Sha256::digest(path.token.as_bytes()));
    let file = store::shared(plugin.pool()?, &hash, store::now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::not_found("this link does not exist or has expired")
                .with_code("share_not_found")
        })?;
    serve(plugin.root()?, &file, &headers).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let header = |text: &'static str| HeaderValue::from_static(text);
        assert_eq!(range(None, 10), Ok(None));
        assert_eq!(range(Some(&header("bytes=0-3")), 10), Ok(Some((0, 3))));
        assert_eq!(range(Some(&header("bytes=4-")), 10), Ok(Some((4, 9))));
        assert_eq!(range(Some(&header("bytes=-3")), 10), Ok(Some((7, 9))));
        assert_eq!(range(Some(&header("bytes=5-100")), 10), Ok(Some((5, 9))));
        assert_eq!(range(Some(&header("bytes=0-1, 4-5")), 10), Ok(None));
        assert_eq!(range(Some(&header("bytes=10-")), 10), Err(()));
        assert_eq!(range(Some(&header("bytes=3-1")), 10), Err(()));
        assert_eq!(range(Some(&header("bytes=x-")), 10), Err(()));
    }

    #[test]
    fn names_lose_folders_and_control_characters() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\Users\\me\\photo.png")), "photo.png");
        assert_eq!(clean_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(clean_name(None), "file");
        assert_eq!(
            disposition("Grüße \"x\".txt"),
            "attachment; filename=\"Gr__e _x_.txt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.txt"
        );
    }
}
