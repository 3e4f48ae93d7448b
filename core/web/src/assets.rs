//! Serves a plugin's embedded UI files: `/plugins/<name>/<page>/` (the page's `index.html`
//! and the files beside it) and `/plugins/<name>/static/…` (its `ui/static/` folder), with
//! content types, strong ETags and 304, gzip or brotli when accepted (each file compressed
//! once, on first demand), and a year of caching for content-hashed names.
//!
//! Lookups are exact matches in the embedded set: no request reaches the file system, so no
//! path (`..`, encoded or not, backslashes, NUL) can name anything else; such paths get 404.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};

use plexichat_kernel::abi::assets::{EmbeddedFile, join};
use plexichat_kernel::abi::plugin::PluginDescriptor;
use plexichat_kernel::error::ApiError;
use plexichat_kernel::runtime::Host;

/// Where a plugin's shared assets are served: `/plugins/<name>/static/…` is `ui/static/…`.
const STATIC: (&str, &str) = ("static", "ui/static");

/// One plugin's pages and files, ready to serve.
pub(crate) struct PluginAssets {
    plugin: &'static str,
    /// Page name → its folder, relative to the crate.
    pages: HashMap<&'static str, &'static str>,
    files: HashMap<&'static str, Asset>,
}

/// One embedded file and what is derived from it on first demand.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    /// A content-hashed name (`app.3f9a1c2e.js`) never changes meaning.
    immutable: bool,
    etag: OnceLock<String>,
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

/// The paths of a plugin's UI routes, in the order [`PluginAssets::routes`] gives them: a page
/// without its slash (redirected), a page's `index.html`, and a file of a page or of `static`.
pub(crate) fn route_paths(plugin: &str) -> [String; 3] {
    let base = format!("/plugins/{plugin}");
    [
        format!("{base}/{{page}}"),
        format!("{base}/{{page}}/"),
        format!("{base}/{{page}}/{{*rest}}"),
    ]
}

impl PluginAssets {
    /// The plugin's assets, or `None` when it has no UI files.
    pub(crate) fn of(descriptor: &PluginDescriptor) -> Option<Arc<PluginAssets>> {
        if descriptor.ui_files.is_empty() {
            return None;
        }
        let pages = descriptor
            .ui_pages
            .iter()
            .map(|page| (page.name, page.path.trim_end_matches('/')))
            .collect();
        let files = descriptor
            .ui_files
            .iter()
            .map(|file| (file.path, Asset::new(file)))
            .collect();
        Some(Arc::new(PluginAssets {
            plugin: descriptor.name,
            pages,
            files,
        }))
    }

    /// The routes under `/plugins/<name>/`, to be guarded like the plugin's own routes.
    pub(crate) fn routes(self: &Arc<Self>) -> Vec<(String, MethodRouter<Host>)> {
        let [page_path, index_path, file_path] = route_paths(self.plugin);
        let page_only = Arc::clone(self);
        let index = Arc::clone(self);
        let file = Arc::clone(self);
        vec![
            (
                page_path,
                get(
                    move |Path(page): Path<String>, request: Request| async move {
                        page_only.redirect_to_folder(&page, &request)
                    },
                ),
            ),
            (
                index_path,
                get(
                    move |Path(page): Path<String>, request: Request| async move {
                        index.serve(&page, "", request.headers())
                    },
                ),
            ),
            (
                file_path,
                get(
                    move |Path((page, rest)): Path<(String, String)>, request: Request| async move {
                        file.serve(&page, &rest, request.headers())
                    },
                ),
            ),
        ]
    }

    /// The folder a page name stands for, or the shared assets for `static`.
    fn folder(&self, page: &str) -> Option<&'static str> {
        if page == STATIC.0 {
            return Some(STATIC.1);
        }
        self.pages.get(page).copied()
    }

    /// `/plugins/<name>/<page>` → `…/<page>/`, so that the page's relative links resolve
    /// inside its folder.
    fn redirect_to_folder(&self, page: &str, request: &Request) -> Response {
        if !self.pages.contains_key(page) {
            return self.not_found(page, "");
        }
        let uri = request.uri();
        let location = match uri.query() {
            Some(query) => format!("{}/?{query}", uri.path()),
            None => format!("{}/", uri.path()),
        };
        match HeaderValue::try_from(location) {
            Ok(location) => (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => self.not_found(page, ""),
        }
    }

    fn serve(&self, page: &str, rest: &str, headers: &HeaderMap) -> Response {
        let Some(folder) = self.folder(page) else {
            return self.not_found(page, rest);
        };
        let path = if rest.is_empty() || rest.ends_with('/') {
            join(folder, &format!("{rest}index.html"))
        } else {
            join(folder, rest)
        };
        match self.files.get(path.as_str()) {
            Some(asset) => asset.respond(headers),
            None => self.not_found(page, rest),
        }
    }

    fn not_found(&self, page: &str, rest: &str) -> Response {
        ApiError::not_found(format!(
            "plugin `{}` has no UI file `{page}/{rest}`",
            self.plugin
        ))
        .into_response()
    }
}

/// Core's own page files, shared by every page: the one stylesheet and the page script (the
/// bar at the top, readable times). One source each, in `core/web/src/ui/`.
pub(crate) const SHARED: [(&str, &str, &[u8]); 2] = [
    (
        crate::paths::UI_CSS,
        "ui/plexichat.css",
        include_bytes!("ui/plexichat.css"),
    ),
    (
        crate::paths::UI_JS,
        "ui/plexichat.js",
        include_bytes!("ui/plexichat.js"),
    ),
];

/// Answers a request for one of [`SHARED`], by its route path, as a plugin's file is answered
/// (ETag and 304, compression, revalidation).
pub(crate) fn shared(path: &'static str, request: &HeaderMap) -> Response {
    static ASSETS: OnceLock<Vec<(&'static str, Asset)>> = OnceLock::new();
    let assets = ASSETS.get_or_init(|| {
        SHARED
            .iter()
            .map(|(route, file, bytes)| (*route, Asset::new(&EmbeddedFile { path: file, bytes })))
            .collect()
    });
    match assets.iter().find(|(route, _)| *route == path) {
        Some((_, asset)) => asset.respond(request),
        None => ApiError::not_found(format!("no file {path}")).into_response(),
    }
}

impl Asset {
    fn new(file: &EmbeddedFile) -> Asset {
        Asset {
            bytes: file.bytes,
            content_type: content_type(file.path),
            immutable: is_content_hashed(file.path),
            etag: OnceLock::new(),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// 200 with the best encoding the client accepts, or 304 when it has this version.
    fn respond(&self, request: &HeaderMap) -> Response {
        let tag = self.etag.get_or_init(|| etag(self.bytes));
        let encoding = if is_compressible(self.content_type) {
            negotiate(request.get(header::ACCEPT_ENCODING))
        } else {
            Encoding::Identity
        };
        let (body, encoding) = match encoding {
            Encoding::Brotli => match self.brotli.get_or_init(|| brotli(self.bytes)) {
                Some(bytes) => (bytes.clone(), Encoding::Brotli),
                None => (Bytes::from_static(self.bytes), Encoding::Identity),
            },
            Encoding::Gzip => match self.gzip.get_or_init(|| gzip(self.bytes)) {
                Some(bytes) => (bytes.clone(), Encoding::Gzip),
                None => (Bytes::from_static(self.bytes), Encoding::Identity),
            },
            Encoding::Identity => (Bytes::from_static(self.bytes), Encoding::Identity),
        };
        // Each encoding is its own representation, with its own strong tag.
        let tag = format!("\"{tag}{}\"", encoding.tag_suffix());
        let mut response = if matches(request.get(header::IF_NONE_MATCH), &tag) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Response::new(Body::from(body));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            if let Some(name) = encoding.header() {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
            }
            response
        };
        let headers = response.headers_mut();
        if let Ok(tag) = HeaderValue::try_from(tag) {
            headers.insert(header::ETAG, tag);
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if self.immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response
    }
}

/// A strong validator: the first 128 bits of the content's SHA-256, in hex.
fn etag(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `If-None-Match` names `tag` (or is `*`). Weak comparison, as RFC 9110 asks for
/// this header: `W/"x"` matches `"x"`.
fn matches(if_none_match: Option<&HeaderValue>, tag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    value.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Brotli => Some("br"),
            Encoding::Gzip => Some("gzip"),
            Encoding::Identity => None,
        }
    }

    fn tag_suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => "-br",
            Encoding::Gzip => "-gz",
            Encoding::Identity => "",
        }
    }
}

/// The client's preferred encoding among brotli and gzip (brotli on a tie), by the q-values
/// of `Accept-Encoding`; `*` stands for any encoding not named.
fn negotiate(accept: Option<&HeaderValue>) -> Encoding {
    let Some(accept) = accept.and_then(|value| value.to_str().ok()) else {
        return Encoding::Identity;
    };
    let (mut br, mut gzip, mut any) = (None, None, None);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|param| {
                let (key, value) = param.split_once('=')?;
                (key.trim().eq_ignore_ascii_case("q")).then(|| value.trim().parse::<f32>().ok())?
            })
            .unwrap_or(1.0);
        match name.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => any = Some(q),
            _ => {}
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// The compressed bytes, or `None` when compressing does not make the file smaller.
fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).ok()?;
    smaller(encoder.finish().ok()?, bytes)
}

fn brotli(bytes: &[u8]) -> Option<Bytes> {
    let mut out = Vec::new();
    {
        // Quality 11 is slow, but each file is compressed once per process.
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        writer.write_all(bytes).ok()?;
    }
    smaller(out, bytes)
}

fn smaller(compressed: Vec<u8>, original: &[u8]) -> Option<Bytes> {
    (compressed.len() < original.len()).then(|| Bytes::from(compressed))
}

/// Text formats shrink; images, fonts and archives are compressed already.
fn is_compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/xml")
        || content_type.starts_with("image/svg+xml")
        || content_type == "application/wasm"
        || content_type == "image/x-icon"
}

/// The content type for a file name's extension (`application/octet-stream` when unknown),
/// as UI pages are served.
pub fn content_type(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Whether the file name carries its content's hash (`app.3f9a1c2e.js`, `chunk-5f3e2a1b.css`):
/// a part of at least 8 hex digits, between the stem and the extension or after a `-`.
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, _extension)) = name.rsplit_once('.') else {
        return false;
    };
    stem.rsplit(['.', '-'])
        .next()
        .filter(|part| part.len() != stem.len())
        .is_some_and(|hash| hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Encoding {
        negotiate(Some(&HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn encodings_follow_the_clients_q_values() {
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(accept("gzip, deflate, br, zstd"), Encoding::Brotli);
        assert_eq!(accept("gzip"), Encoding::Gzip);
        assert_eq!(accept("br;q=0.5, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(accept("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(accept("*"), Encoding::Brotli);
        assert_eq!(accept("*;q=0.3, br;q=0"), Encoding::Gzip);
        assert_eq!(accept("identity"), Encoding::Identity);
        assert_eq!(accept("BR"), Encoding::Brotli);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let check = |header: &str| matches(Some(&HeaderValue::from_str(header).unwrap()), "\"ab\"");
        assert!(check("\"ab\""));
        assert!(check("W/\"ab\""));
        assert!(check("\"x\", \"ab\""));
        assert!(check("*"));
        assert!(!check("\"abc\""));
        assert!(!matches(None, "\"ab\""));
    }

    #[test]
    fn content_hashed_names_are_recognised() {
        for hashed in [
            "app.3f9a1c2e.js",
            "ui/x/chunk-5f3e2a1b9c.css",
            "a.DEADBEEF.woff2",
        ] {
            assert!(is_content_hashed(hashed), "{hashed}");
        }
        for plain in [
            "app.js",
            "3f9a1c2e.js",
            "app.3f9a1c2.js",
            "app.notahash1.js",
            "x",
        ] {
            assert!(!is_content_hashed(plain), "{plain}");
        }
    }

    #[test]
    fn compression_is_kept_only_when_smaller() {
        let text = "hello, compressible world. ".repeat(100);
        let gz = gzip(text.as_bytes()).unwrap();
        assert!(gz.len() < text.len());
        let mut decoded = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut decoded)
            .unwrap();
        assert_eq!(decoded, text);
        let br = brotli(text.as_bytes()).unwrap();
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut decoded).unwrap();
        assert_eq!(decoded, text.as_bytes());
        assert!(gzip(b"x").is_none());
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("ui/a/index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("ui/a/app.JS"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("ui/a/logo.svg"), "image/svg+xml");
        assert_eq!(content_type("ui/a/LICENSE"), "application/octet-stream");
    }
}
