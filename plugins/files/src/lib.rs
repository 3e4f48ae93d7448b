//! `files`: what people upload. A body streams to the plugin's data folder (`blobs/<id>`)
//! under a size cap and a per-person quota, hashed (SHA-256) and typed by its first bytes,
//! never by what the client claims. Downloads honour `Range` and are always attachments with
//! `nosniff` and a sandboxing CSP, so an upload can never run as a page of this origin.
//!
//! A file is its uploader's until they attach it to a message (`file_ids`): this plugin
//! checks the attachment as the message is proposed (`channels.message.posting`) and from
//! then on whoever may read that channel may read the file. Share links give anyone the file
//! until they expire.

pub mod api;
mod self_tests;
mod sniff;
mod store;

use std::sync::OnceLock;

use accounts::Accounts;
use channels::{Channels, MessagePosting};
use plexichat::prelude::*;
use plexichat::sqlx::AnyPool;

pub use api::FileInfo;

/// Uploads and downloads, attachments readable by a channel's readers, and share links.
#[plugin(
    author = "PlexiChat",
    type = core,
    prefix = "/api/v1",
    dependencies = [Accounts, Channels],
    permissions = ["database", "plugin:read", "plugin:write"],
    migrations = "migrations",
    config = FilesConfig,
    lifecycle = true,
    tags = ["chat"],
)]
#[derive(Default)]
pub struct Files {
    pool: OnceLock<AnyPool>,
    /// `<data>/plugins/files/`, set when the plugin starts.
    root: OnceLock<std::path::PathBuf>,
}

/// `[plugins.files]`.
#[config]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesConfig {
    /// The largest upload, in bytes (also bounded by `[server] body_limit`).
    #[schemars(range(min = 1))]
    pub max_upload_bytes: u64,
    /// What one person may store in all, in bytes.
    #[schemars(range(min = 1))]
    pub quota_bytes_per_user: u64,
    /// The longest a share link may last, in hours.
    #[schemars(range(min = 1, max = 8760))]
    pub share_max_hours: u32,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_upload_bytes: 25 * 1024 * 1024,
            quota_bytes_per_user: 1024 * 1024 * 1024,
            share_max_hours: 720,
        }
    }
}

impl Lifecycle for Files {
    async fn init(&self, context: &PluginContext<Self>) -> Result<(), BoxError> {
        let _ = self.pool.set(context.db().pool().clone());
        let root = context.files().root().to_path_buf();
        for folder in ["blobs", "incoming"] {
            tokio::fs::create_dir_all(root.join(folder)).await?;
        }
        // Uploads cut short by a crash or a restart were never recorded: nothing points at them.
        let mut incoming = tokio::fs::read_dir(root.join("incoming")).await?;
        while let Some(leftover) = incoming.next_entry().await? {
            let _ = tokio::fs::remove_file(leftover.path()).await;
        }
        let _ = self.root.set(root);
        Ok(())
    }
}

impl Files {
    fn pool(&self) -> Result<&AnyPool, ApiError> {
        self.pool
            .get()
            .ok_or_else(|| ApiError::unavailable("files has not started"))
    }

    fn root(&self) -> Result<&std::path::Path, ApiError> {
        self.root
            .get()
            .map(std::path::PathBuf::as_path)
            .ok_or_else(|| ApiError::unavailable("files has not started"))
    }
}

/// Checks a message's attachments as it is proposed: each must be a file its author
/// uploaded. Accepted, the channel's readers may read them.
#[on_event(pre)]
async fn accept_attachments(files: &Files, post: &mut MessagePosting) -> Result<(), String> {
    if post.file_ids.is_empty() {
        return Ok(());
    }
    let pool = files.pool().map_err(|error| error.to_string())?;
    for &id in &post.file_ids {
        match store::file(pool, id).await {
            Ok(Some(file)) if file.owner_id == post.author_id => {}
            Ok(_) => return Err(format!("file {id} is not one you uploaded")),
            Err(error) => return Err(format!("the files could not be checked: {error}")),
        }
    }
    for &id in &post.file_ids {
        store::grant(pool, id, post.channel_id)
            .await
            .map_err(|error| format!("the files could not be attached: {error}"))?;
    }
    post.files_accepted = true;
    Ok(())
}
