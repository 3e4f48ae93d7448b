//! `chat_web`: the web client people chat in, a page of the server's own origin
//! (`/plugins/chat_web/chat/`, linked as "Chat" in every page's bar). It uses only the
//! public API: `accounts` to sign in, `channels` for conversations, `files` for uploads and
//! `realtime`'s WebSocket to hear what happens, resuming where it stopped after a
//! disconnection. The access and refresh tokens are kept in the browser's `localStorage`,
//! so a reload stays signed in.

use accounts::Accounts;
use channels::Channels;
use files::Files;
use plexichat::prelude::*;
use realtime::Realtime;

/// The web client: channels, live messages, reactions, threads, typing and uploads.
#[plugin(
    author = "PlexiChat",
    type = core,
    dependencies = [Accounts, Channels, Files, Realtime],
    // The page keeps people's tokens in this origin's storage, as the shell keeps the admin
    // session: it is one of the server's own pages.
    permissions = ["ui:trusted"],
    tags = ["chat", "ui"],
    ui_pages = [{
        name = "chat",
        path = "ui/chat",
        title = "Chat",
        description = "Sign in and chat: channels, live messages, reactions, threads and uploads",
    }],
)]
#[derive(Default)]
pub struct ChatWeb;
