// PlexiChat's web client. Everything goes through the public API: `/api/v1/auth` to sign
// in, `/api/v1/channels` and `/api/v1/messages` for conversations, `/api/v1/files` for
// uploads, and the WebSocket `/api/v1/ws` for what happens meanwhile. The WebSocket's
// first frame asks to resume from the last sequence number seen in each channel, so after
// a disconnection (a server restart, a network change) the client gets what it missed.
//
// Text from people is only ever set as text (`textContent`), never as HTML.
"use strict";

(function () {
  const TOKENS = "plexichat.chat.tokens";
  const $ = (id) => document.getElementById(id);

  const state = {
    tokens: null, // { access_token, refresh_token, session_id, user }
    me: null,
    channels: new Map(), // id -> channel (with membership)
    joinable: new Map(),
    current: null, // channel id
    lastSeq: new Map(), // channel id -> last sequence number seen
    messages: new Map(), // message id -> message, for the open channel and thread
    users: new Map(), // id -> Promise of a user
    thread: null, // root message id
    pending: [], // uploaded files waiting to be sent: {id, name}
    socket: null,
    retry: 0,
    typing: new Map(), // user id -> {name, timer}
    lastTyped: 0,
  };

  // ---- Tokens and requests --------------------------------------------------------------

  function keep(tokens) {
    state.tokens = tokens;
    try {
      if (tokens) localStorage.setItem(TOKENS, JSON.stringify(tokens));
      else localStorage.removeItem(TOKENS);
    } catch (_) {
      // Without storage the session lasts as long as the page.
    }
  }

  function stored() {
    try {
      return JSON.parse(localStorage.getItem(TOKENS) || "null");
    } catch (_) {
      return null;
    }
  }

  class Problem extends Error {
    constructor(status, body) {
      super(body.detail || body.error || `HTTP ${status}`);
      this.status = status;
      this.code = body.code;
      this.body = body;
    }
  }

  let refreshing = null;
  async function refresh() {
    if (!refreshing) {
      refreshing = (async () => {
        const response = await fetch("/api/v1/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ refresh_token: state.tokens && state.tokens.refresh_token }),
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw new Problem(response.status, body);
        keep(body);
        return body;
      })().finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  // A call to the API as the signed-in person; renews the access token once when it has
  // expired. Resolves to the parsed body (null for 204), rejects with a Problem.
  async function api(method, path, body, { raw, headers: extra } = {}) {
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers = { Accept: "application/json", ...(extra || {}) };
      if (state.tokens) headers.Authorization = `Bearer ${state.tokens.access_token}`;
      let payload;
      if (raw !== undefined) {
        payload = raw;
      } else if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
      const response = await fetch(path, { method, headers, body: payload });
      if (response.status === 204) return null;
      const answer = await response.json().catch(() => ({}));
      if (response.ok) return answer;
      if (response.status === 401 && answer.code === "token_expired" && attempt === 0) {
        try {
          await refresh();
          continue;
        } catch (_) {
          signedOut();
        }
      } else if (response.status === 401 && state.tokens) {
        signedOut();
      }
      throw new Problem(response.status, answer);
    }
    throw new Error("unreachable");
  }

  function user(id) {
    if (!state.users.has(id)) {
      state.users.set(
        id,
        api("GET", `/api/v1/users/${id}`).catch(() => ({ id, username: `user ${id}`, display_name: `user ${id}` })),
      );
    }
    return state.users.get(id);
  }

  function say(element, text) {
    element.textContent = text || "";
  }

  // ---- Signing in ----------------------------------------------------------------------

  let registering = false;

  function showAuth() {
    $("chat").hidden = true;
    $("auth").hidden = false;
    $("username").focus();
  }

  function setMode(register) {
    registering = register;
    $("tab-sign-in").setAttribute("aria-selected", String(!register));
    $("tab-register").setAttribute("aria-selected", String(register));
    $("auth-submit").textContent = register ? "Register" : "Sign in";
    $("password").autocomplete = register ? "new-password" : "current-password";
    $("invite-field").hidden = !register;
    $("totp-field").hidden = true;
    say($("auth-error"), "");
  }

  async function submitAuth(event) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    const body = { username, password };
    let path = "/api/v1/auth/login";
    if (registering) {
      path = "/api/v1/auth/register";
      if ($("invite").value.trim()) body.invite_code = $("invite").value.trim();
    } else if (!$("totp-field").hidden && $("totp").value.trim()) {
      const code = $("totp").value.trim();
      if (/^\d{6}$/.test(code)) body.totp_code = code;
      else body.recovery_code = code;
    }
    $("auth-submit").disabled = true;
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        if (answer.code === "mfa_required") {
          $("totp-field").hidden = false;
          $("totp").focus();
        }
        say($("auth-error"), answer.detail || answer.error || `HTTP ${response.status}`);
        return;
      }
      keep(answer);
      $("password").value = "";
      $("totp").value = "";
      await enter();
    } catch (error) {
      say($("auth-error"), `The server did not answer: ${error.message}`);
    } finally {
      $("auth-submit").disabled = false;
    }
  }

  // A reset link (`#reset=<code>`, made by an admin) sets a new password, then signing in
  // with it is the next step.
  function showReset(code) {
    showAuth();
    for (const id of ["auth-form", "forgot"]) $(id).hidden = true;
    document.querySelector("#auth .tabs").hidden = true;
    $("reset-form").hidden = false;
    $("reset-password").focus();
    $("reset-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("reset-submit").disabled = true;
      try {
        const response = await fetch("/api/v1/auth/password/reset", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ code, new_password: $("reset-password").value }),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          say($("reset-error"), answer.detail || `HTTP ${response.status}`);
          return;
        }
        history.replaceState(null, "", location.pathname);
        $("reset-form").hidden = true;
        for (const id of ["auth-form", "forgot"]) $(id).hidden = false;
        document.querySelector("#auth .tabs").hidden = false;
        setMode(false);
        say($("auth-error"), "Your new password is set: sign in with it.");
        $("username").focus();
      } catch (error) {
        say($("reset-error"), `The server did not answer: ${error.message}`);
      } finally {
        $("reset-submit").disabled = false;
      }
    });
  }

  function signedOut() {
    keep(null);
    if (state.socket) {
      const socket = state.socket;
      state.socket = null;
      socket.close(1000);
    }
    state.channels.clear();
    state.current = null;
    state.lastSeq.clear();
    sidePanel(null);
    setMode(false);
    showAuth();
  }

  async function signOut() {
    try {
      await api("POST", "/api/v1/auth/logout", {});
    } catch (_) {
      // Signed out on this side either way.
    }
    signedOut();
  }

  // ---- Channels ------------------------------------------------------------------------

  async function loadChannels() {
    const mine = [];
    const open = [];
    let after = 0;
    for (;;) {
      const page = await api("GET", `/api/v1/channels?limit=200&after=${after}`);
      for (const channel of page.channels) {
        (channel.membership ? mine : open).push(channel);
      }
      if (page.next_after == null) break;
      after = page.next_after;
    }
    state.channels = new Map(mine.map((channel) => [channel.id, channel]));
    state.joinable = new Map(open.map((channel) => [channel.id, channel]));
    for (const channel of mine) {
      if (!state.lastSeq.has(channel.id)) state.lastSeq.set(channel.id, channel.last_seq);
    }
    await renderChannels();
  }

  async function label(channel) {
    if (channel.kind !== "direct") return `${channel.kind === "private" ? "🔒 " : "# "}${channel.name}`;
    const others = (channel.direct_user_ids || []).filter((id) => id !== state.me.id);
    const people = await Promise.all((others.length ? others : [state.me.id]).map(user));
    return `@ ${people.map((person) => person.display_name).join(", ")}`;
  }

  async function renderChannels() {
    const list = $("channels");
    const items = [];
    for (const channel of state.channels.values()) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.channel = channel.id;
      if (channel.id === state.current) button.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.textContent = await label(channel);
      button.append(name);
      const unread = channel.membership ? channel.membership.unread : 0;
      if (unread > 0 && channel.id !== state.current) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = String(unread);
        badge.setAttribute("aria-label", `${unread} unread`);
        button.append(badge);
      }
      button.addEventListener("click", () => openChannel(channel.id));
      const item = document.createElement("li");
      item.append(button);
      items.push(item);
    }
    list.replaceChildren(...items);
    const open = [];
    for (const channel of state.joinable.values()) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `# ${channel.name}`;
      button.addEventListener("click", () => openChannel(channel.id));
      const item = document.createElement("li");
      item.append(button);
      open.push(item);
    }
    $("joinable").replaceChildren(...open);
  }

  async function createChannel(event) {
    event.preventDefault();
    say($("side-error"), "");
    try {
      const channel = await api("POST", "/api/v1/channels", {
        kind: $("channel-kind").value,
        name: $("channel-name").value,
      });
      $("channel-name").value = "";
      $("new-channel-box").open = false;
      await loadChannels();
      await openChannel(channel.id);
    } catch (error) {
      say($("side-error"), error.message);
    }
  }

  async function openDirect(event) {
    event.preventDefault();
    say($("side-error"), "");
    const name = $("direct-user").value.trim().toLowerCase();
    if (!name) return;
    try {
      const found = await api("GET", `/api/v1/users?q=${encodeURIComponent(name)}&limit=20`);
      const person = found.users.find((candidate) => candidate.username === name);
      if (!person) throw new Error(`no one is called ${name}`);
      const channel = await api("POST", "/api/v1/channels", { kind: "direct", user_id: person.id });
      $("direct-user").value = "";
      await loadChannels();
      await openChannel(channel.id);
    } catch (error) {
      say($("side-error"), error.message);
    }
  }

  async function openChannel(id) {
    state.current = id;
    state.messages.clear();
    closeThread();
    $("chat").classList.remove("show-sidebar");
    say($("room-error"), "");
    say($("typing"), "");
    const channel = state.channels.get(id) || state.joinable.get(id) || (await api("GET", `/api/v1/channels/${id}`));
    say($("room-name"), await label(channel));
    say($("room-topic"), channel.topic);
    const member = state.channels.has(id);
    $("join").hidden = member;
    $("composer").hidden = !member;
    if (!member) send({ type: "subscribe", channel_id: id });
    // Emptied before the history is asked for, so that a message arriving meanwhile is kept
    // (in its place by sequence number) rather than wiped with the old channel's.
    $("messages").replaceChildren();
    const page = await api("GET", `/api/v1/channels/${id}/messages?limit=50`);
    if (state.current !== id) return;
    for (const message of page.messages) await showMessage(message, $("messages"));
    scrollDown($("messages"));
    if (member) {
      state.lastSeq.set(id, Math.max(state.lastSeq.get(id) || 0, channel.last_seq));
      await markRead(id, channel.last_seq);
    }
    await renderChannels();
    if (member) $("message").focus();
  }

  async function join() {
    try {
      await api("POST", `/api/v1/channels/${state.current}/members`, {});
      const id = state.current;
      await loadChannels();
      await openChannel(id);
    } catch (error) {
      say($("room-error"), error.message);
    }
  }

  let readTimer = null;
  async function markRead(id, seq) {
    const channel = state.channels.get(id);
    if (channel && channel.membership) channel.membership.unread = 0;
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      api("PUT", `/api/v1/channels/${id}/read`, { seq }).catch(() => {});
    }, 300);
  }

  // ---- Messages ------------------------------------------------------------------------

  function scrollDown(box) {
    box.scrollTop = box.scrollHeight;
  }

  async function showMessage(message, box) {
    state.messages.set(message.id, message);
    const node = document.createElement("article");
    node.className = "message";
    node.dataset.message = message.id;
    node.dataset.seq = message.seq;
    if (message.deleted) node.classList.add("deleted");
    const author = await user(message.author_id);
    const meta = document.createElement("div");
    meta.className = "meta";
    const name = document.createElement("span");
    name.className = "author";
    name.textContent = author.display_name || author.username;
    meta.append(name, PlexiChat.time(message.created_at));
    if (message.edited_at && !message.deleted) {
      const edited = document.createElement("span");
      edited.className = "muted";
      edited.textContent = "(edited)";
      meta.append(edited);
    }
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = message.deleted ? "This message was deleted." : message.body;
    node.append(meta, body);
    if (!message.deleted && message.file_ids && message.file_ids.length) {
      node.append(await attachments(message.file_ids));
    }
    if (!message.deleted) node.append(actions(message, box));
    // Looked up after the awaits above: history and a live event may bring the same message
    // at once, and it is shown once, in sequence order.
    const existing = box.querySelector(`[data-message="${message.id}"]`);
    if (existing) {
      existing.replaceWith(node);
    } else {
      const later = Array.from(box.children).find((child) => Number(child.dataset.seq) > message.seq);
      if (later) box.insertBefore(node, later);
      else box.append(node);
    }
    return node;
  }

  async function attachments(ids) {
    const holder = document.createElement("div");
    holder.className = "attachments";
    for (const id of ids) {
      try {
        const info = await api("GET", `/api/v1/files/${id}`);
        const link = document.createElement("a");
        link.textContent = `📎 ${info.name} (${Math.ceil(info.size / 1024)} KiB)`;
        link.href = "#";
        link.addEventListener("click", async (event) => {
          event.preventDefault();
          const url = await fileUrl(info);
          const save = document.createElement("a");
          save.href = url;
          save.download = info.name;
          save.click();
        });
        if (info.content_type.startsWith("image/")) {
          const image = document.createElement("img");
          image.alt = info.name;
          fileUrl(info).then((url) => {
            image.src = url;
          });
          holder.append(image);
        }
        holder.append(link);
      } catch (_) {
        const gone = document.createElement("span");
        gone.className = "muted";
        gone.textContent = "📎 a file that is no longer there";
        holder.append(gone);
      }
    }
    return holder;
  }

  // The file's bytes as a blob URL: downloads need the access token, which a plain link
  // cannot carry.
  const fileUrls = new Map();
  async function fileUrl(info) {
    if (!fileUrls.has(info.id)) {
      fileUrls.set(
        info.id,
        (async () => {
          const response = await fetch(info.content_url, {
            headers: { Authorization: `Bearer ${state.tokens.access_token}` },
          });
          return URL.createObjectURL(await response.blob());
        })(),
      );
    }
    return fileUrls.get(info.id);
  }

  function actions(message, box) {
    const bar = document.createElement("div");
    bar.className = "actions";
    for (const reaction of message.reactions || []) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "secondary reaction";
      const mine = reaction.user_ids.includes(state.me.id);
      chip.setAttribute("aria-pressed", String(mine));
      chip.textContent = `${reaction.emoji} ${reaction.count}`;
      chip.addEventListener("click", () => react(message.id, reaction.emoji, !mine));
      bar.append(chip);
    }
    const member = state.channels.has(message.channel_id);
    if (member) {
      for (const emoji of ["👍", "🎉"]) {
        if ((message.reactions || []).some((reaction) => reaction.emoji === emoji)) continue;
        const add = document.createElement("button");
        add.type = "button";
        add.className = "secondary";
        add.textContent = `+${emoji}`;
        add.setAttribute("aria-label", `React with ${emoji}`);
        add.addEventListener("click", () => react(message.id, emoji, true));
        bar.append(add);
      }
    }
    if (box === $("messages") && message.thread_root_id == null) {
      const thread = document.createElement("button");
      thread.type = "button";
      thread.className = "secondary";
      thread.textContent = message.reply_count ? `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}` : "Reply";
      thread.addEventListener("click", () => openThread(message.id));
      bar.append(thread);
    }
    if (message.author_id === state.me.id) {
      const edit = document.createElement("button");
      edit.type = "button";
      edit.className = "secondary";
      edit.textContent = "Edit";
      edit.addEventListener("click", () => startEdit(message));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary";
      remove.textContent = "Delete";
      remove.addEventListener("click", async () => {
        if (!confirm("Delete this message?")) return;
        try {
          await api("DELETE", `/api/v1/messages/${message.id}`);
        } catch (error) {
          say($("room-error"), error.message);
        }
      });
      bar.append(edit, remove);
    }
    return bar;
  }

  function startEdit(message) {
    const node = document.querySelector(`[data-message="${message.id}"] .body`);
    if (!node) return;
    const form = document.createElement("form");
    form.className = "edit";
    const field = document.createElement("textarea");
    field.value = message.body;
    field.setAttribute("aria-label", "Edit the message");
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    form.append(field, save);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const edited = await api("PATCH", `/api/v1/messages/${message.id}`, { body: field.value });
        await refreshMessage(edited.id, edited);
      } catch (error) {
        say($("room-error"), error.message);
      }
    });
    node.replaceWith(form);
    field.focus();
  }

  async function react(id, emoji, on) {
    try {
      await api(on ? "PUT" : "DELETE", `/api/v1/messages/${id}/reactions/${encodeURIComponent(emoji)}`);
    } catch (error) {
      say($("room-error"), error.message);
    }
  }

  async function refreshMessage(id, known) {
    const message = known || (await api("GET", `/api/v1/messages/${id}`).catch(() => null));
    if (!message) return;
    for (const box of [$("messages"), $("thread-messages")]) {
      if (box.querySelector(`[data-message="${id}"]`)) await showMessage(message, box);
    }
  }

  async function sendMessage(event) {
    event.preventDefault();
    const text = $("message").value;
    if (!text.trim() && !state.pending.length) return;
    const body = { body: text.trim() ? text : state.pending.map((file) => file.name).join(", ") };
    if (state.pending.length) body.file_ids = state.pending.map((file) => file.id);
    $("send").disabled = true;
    try {
      // One key per message: a retry after a lost answer posts it once.
      const key = crypto.randomUUID();
      await api("POST", `/api/v1/channels/${state.current}/messages`, body, {
        headers: { "Idempotency-Key": key },
      });
      $("message").value = "";
      state.pending = [];
      renderPending();
    } catch (error) {
      say($("room-error"), error.message);
    } finally {
      $("send").disabled = false;
      $("message").focus();
    }
  }

  async function upload() {
    const files = Array.from($("upload").files || []);
    $("upload").value = "";
    for (const file of files) {
      try {
        const info = await api("POST", `/api/v1/files?name=${encodeURIComponent(file.name)}`, undefined, {
          raw: file,
          headers: { "Content-Type": "application/octet-stream" },
        });
        state.pending.push({ id: info.id, name: info.name });
        renderPending();
      } catch (error) {
        say($("room-error"), `${file.name}: ${error.message}`);
      }
    }
  }

  function renderPending() {
    $("pending").replaceChildren(
      ...state.pending.map((file) => {
        const item = document.createElement("li");
        item.textContent = `📎 ${file.name}`;
        return item;
      }),
    );
  }

  function composerKeys(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    const now = Date.now();
    if (state.current && now - state.lastTyped > 2500) {
      state.lastTyped = now;
      send({ type: "typing", channel_id: state.current });
    }
  }

  // ---- Threads and search --------------------------------------------------------------

  async function openThread(id) {
    sidePanel("thread");
    state.thread = id;
    const thread = await api("GET", `/api/v1/messages/${id}/thread?limit=200`);
    const box = $("thread-messages");
    box.replaceChildren();
    await showMessage(thread.root, box);
    for (const reply of thread.replies) await showMessage(reply, box);
    scrollDown(box);
    $("thread-message").focus();
  }

  function closeThread() {
    if (!$("thread").hidden) sidePanel(null);
    state.thread = null;
  }

  async function reply(event) {
    event.preventDefault();
    const text = $("thread-message").value;
    if (!text.trim() || state.thread == null) return;
    const root = state.messages.get(state.thread);
    try {
      await api(
        "POST",
        `/api/v1/channels/${root ? root.channel_id : state.current}/messages`,
        { body: text, thread_root_id: state.thread },
        { headers: { "Idempotency-Key": crypto.randomUUID() } },
      );
      $("thread-message").value = "";
    } catch (error) {
      say($("room-error"), error.message);
    }
  }

  async function search(event) {
    event.preventDefault();
    const q = $("search").value.trim();
    if (!q) return;
    sidePanel("results");
    const list = $("result-list");
    try {
      const found = await api("GET", `/api/v1/messages/search?q=${encodeURIComponent(q)}&limit=50`);
      say($("results-title"), `Search: ${q}`);
      if (!found.messages.length) {
        const none = document.createElement("li");
        none.className = "muted";
        none.textContent = "Nothing found.";
        list.replaceChildren(none);
        return;
      }
      const items = [];
      for (const message of found.messages) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        const channel = state.channels.get(message.channel_id) || state.joinable.get(message.channel_id);
        const where = channel ? await label(channel) : `channel ${message.channel_id}`;
        const author = await user(message.author_id);
        button.textContent = `${where} · ${author.display_name}: ${message.body}`;
        button.addEventListener("click", () => openChannel(message.channel_id));
        item.append(button);
        items.push(item);
      }
      list.replaceChildren(...items);
    } catch (error) {
      say($("results-title"), error.message);
      list.replaceChildren();
    }
  }

  // ---- Settings ------------------------------------------------------------------------

  function sidePanel(which) {
    for (const id of ["thread", "results", "settings"]) $(id).hidden = id !== which;
    $("chat").classList.toggle("with-side", which !== null);
    if (which !== "thread") state.thread = null;
  }

  async function openSettings() {
    // Nothing of an earlier opening (perhaps by someone else on this browser) stays shown.
    $("sessions").replaceChildren();
    $("recovery-codes").replaceChildren();
    $("recovery").hidden = true;
    for (const id of ["profile-status", "password-status", "totp-status", "sessions-status"]) say($(id), "");
    sidePanel("settings");
    $("chat").classList.remove("show-sidebar");
    const me = await api("GET", "/api/v1/users/me");
    state.me = me;
    $("display-name").value = me.display_name;
    $("about").value = me.about;
    $("presence").value = me.presence;
    $("status-text").value = me.status_text;
    $("password-username").value = me.username;
    showTotp(me);
    await loadSessions();
    $("display-name").focus();
  }

  function showTotp(me) {
    say($("totp-state"), me.totp_enabled
      ? `On: signing in asks for a code from your app (${me.recovery_codes_left} recovery codes left).`
      : "Off: your password alone signs you in.");
    $("totp-start").hidden = me.totp_enabled;
    $("totp-off").hidden = !me.totp_enabled;
    $("totp-confirm").hidden = true;
  }

  async function saveProfile(event) {
    event.preventDefault();
    try {
      await api("PATCH", "/api/v1/users/me", { display_name: $("display-name").value, about: $("about").value });
      const me = await api("PUT", "/api/v1/users/me/presence", {
        presence: $("presence").value,
        status_text: $("status-text").value,
      });
      state.users.delete(me.id);
      state.profileSaves = (state.profileSaves || 0) + 1;
      say($("me-name"), me.display_name);
      say($("profile-status"), "Saved.");
    } catch (error) {
      say($("profile-status"), error.message);
    }
  }

  async function changePassword(event) {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/auth/password", {
        current_password: $("current-password").value,
        new_password: $("new-password").value,
      });
      $("current-password").value = "";
      $("new-password").value = "";
      say($("password-status"), "Changed; your other sessions are signed out.");
      await loadSessions();
    } catch (error) {
      say($("password-status"), error.message);
    }
  }

  // Draws a QR code from its rows of modules ("1" dark) with a quiet zone of 4.
  function drawQr(canvas, rows) {
    const size = rows.length + 8;
    const scale = Math.floor(canvas.width / size);
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#000";
    const offset = Math.floor((canvas.width - size * scale) / 2) + 4 * scale;
    rows.forEach((row, y) => {
      for (let x = 0; x < row.length; x++) {
        if (row[x] === "1") context.fillRect(offset + x * scale, offset + y * scale, scale, scale);
      }
    });
  }

  async function startTotp(event) {
    event.preventDefault();
    try {
      const setup = await api("POST", "/api/v1/auth/2fa/totp/setup", { password: $("totp-password").value });
      $("totp-password").value = "";
      drawQr($("totp-qr"), setup.qr_modules);
      $("totp-qr").dataset.uri = setup.otpauth_uri;
      say($("totp-secret"), setup.secret);
      $("totp-start").hidden = true;
      $("totp-confirm").hidden = false;
      say($("totp-status"), "");
      $("totp-code").focus();
    } catch (error) {
      say($("totp-status"), error.message);
    }
  }

  async function confirmTotp(event) {
    event.preventDefault();
    try {
      const answer = await api("POST", "/api/v1/auth/2fa/totp/confirm", { code: $("totp-code").value.trim() });
      $("totp-code").value = "";
      $("recovery-codes").replaceChildren(
        ...answer.recovery_codes.map((code) => {
          const item = document.createElement("li");
          item.textContent = code;
          return item;
        }),
      );
      $("recovery").hidden = false;
      showTotp(await api("GET", "/api/v1/users/me"));
      say($("totp-status"), "Two-factor sign-in is on.");
    } catch (error) {
      say($("totp-status"), error.message);
    }
  }

  async function stopTotp(event) {
    event.preventDefault();
    const code = $("totp-off-code").value.trim();
    const body = { password: $("totp-off-password").value };
    if (/^\d{6}$/.test(code)) body.code = code;
    else body.recovery_code = code;
    try {
      await api("DELETE", "/api/v1/auth/2fa/totp", body);
      $("totp-off-password").value = "";
      $("totp-off-code").value = "";
      $("recovery").hidden = true;
      showTotp(await api("GET", "/api/v1/users/me"));
      say($("totp-status"), "Two-factor sign-in is off.");
    } catch (error) {
      say($("totp-status"), error.message);
    }
  }

  async function loadSessions() {
    const list = await api("GET", "/api/v1/auth/sessions");
    $("sessions").replaceChildren(
      ...list.sessions.map((session) => {
        const item = document.createElement("li");
        item.dataset.session = session.id;
        const where = document.createElement("span");
        where.textContent = `${session.current ? "This browser" : session.user_agent || "a client"} · ${session.address || "?"} · `;
        where.append(PlexiChat.time(session.last_used_at));
        item.append(where);
        if (!session.current) {
          const end = document.createElement("button");
          end.type = "button";
          end.className = "secondary";
          end.textContent = "Sign out";
          end.addEventListener("click", async () => {
            try {
              await api("DELETE", `/api/v1/auth/sessions/${session.id}`);
              await loadSessions();
            } catch (error) {
              say($("sessions-status"), error.message);
            }
          });
          item.append(end);
        }
        return item;
      }),
    );
  }

  async function endOthers() {
    try {
      await api("DELETE", "/api/v1/auth/sessions");
      await loadSessions();
      say($("sessions-status"), "Signed out everywhere else.");
    } catch (error) {
      say($("sessions-status"), error.message);
    }
  }

  // ---- Live events ---------------------------------------------------------------------

  function send(frame) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN && state.socket.ready) {
      state.socket.send(JSON.stringify(frame));
    }
  }

  function connection(text) {
    say($("connection"), text);
  }

  function connect() {
    if (!state.tokens) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
    const socket = new WebSocket(url);
    state.socket = socket;
    connection("connecting…");
    socket.addEventListener("open", () => {
      const resume = {};
      for (const [id, seq] of state.lastSeq) resume[id] = seq;
      socket.send(JSON.stringify({ type: "auth", token: state.tokens.access_token, resume }));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      handle(socket, frame);
    });
    socket.addEventListener("close", async (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (!state.tokens) return;
      connection("reconnecting…");
      if (event.code === 4401) {
        try {
          await refresh();
        } catch (_) {
          signedOut();
          return;
        }
      } else if (event.code === 4403) {
        signedOut();
        return;
      }
      const delay = Math.min(10000, 500 * 2 ** state.retry) * (0.5 + Math.random() / 2);
      state.retry = Math.min(state.retry + 1, 5);
      setTimeout(connect, delay);
    });
  }

  let queue = Promise.resolve();
  function handle(socket, frame) {
    // Frames are handled one after another, in the order they came.
    queue = queue.then(() => apply(socket, frame)).catch(() => {});
  }

  async function apply(socket, frame) {
    switch (frame.type) {
      case "ready":
        socket.ready = true;
        state.retry = 0;
        connection("connected");
        if (state.current && !state.channels.has(state.current)) {
          send({ type: "subscribe", channel_id: state.current });
        }
        await loadChannels();
        return;
      case "typing":
        if (frame.channel_id === state.current) await showTyping(frame.user_id);
        return;
      case "presence.updated":
      case "pong":
      case "subscribed":
      case "error":
        return;
      case "resync":
        if (frame.channel_id === state.current) await openChannel(state.current);
        return;
      default:
        if (typeof frame.seq === "number") await event(frame);
    }
  }

  async function event(frame) {
    const id = frame.channel_id;
    const last = state.lastSeq.get(id) || 0;
    if (frame.seq <= last && state.channels.has(id)) return;
    state.lastSeq.set(id, Math.max(last, frame.seq));
    const open = id === state.current;
    const data = frame.data || {};
    switch (frame.type) {
      case "message.created": {
        if (open) {
          if (data.thread_root_id == null) {
            const box = $("messages");
            const near = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
            await showMessage(data, box);
            if (near || data.author_id === state.me.id) scrollDown(box);
            await markRead(id, frame.seq);
          } else {
            await refreshMessage(data.thread_root_id);
            if (state.thread === data.thread_root_id) {
              await showMessage(data, $("thread-messages"));
              scrollDown($("thread-messages"));
            }
          }
          clearTyping(data.author_id);
        } else if (state.channels.has(id) && data.author_id !== state.me.id) {
          const channel = state.channels.get(id);
          channel.membership.unread += 1;
          await renderChannels();
        }
        return;
      }
      case "message.updated":
      case "message.deleted":
        if (open) await refreshMessage(data.id, frame.type === "message.updated" ? null : data);
        return;
      case "reaction.added":
      case "reaction.removed":
        if (open) await refreshMessage(data.message_id);
        return;
      case "member.joined":
      case "member.left":
      case "channel.updated":
        await loadChannels();
        if (open && frame.type === "member.left" && data.user_id === state.me.id) {
          state.current = null;
          $("messages").replaceChildren();
          say($("room-name"), "Pick a channel");
          $("composer").hidden = true;
        }
        return;
      default:
    }
  }

  async function showTyping(userId) {
    const person = await user(userId);
    const earlier = state.typing.get(userId);
    if (earlier) clearTimeout(earlier.timer);
    state.typing.set(userId, {
      name: person.display_name,
      timer: setTimeout(() => clearTyping(userId), 4000),
    });
    renderTyping();
  }

  function clearTyping(userId) {
    const typing = state.typing.get(userId);
    if (typing) clearTimeout(typing.timer);
    state.typing.delete(userId);
    renderTyping();
  }

  function renderTyping() {
    const names = Array.from(state.typing.values(), (typing) => typing.name);
    say($("typing"), names.length ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…` : "");
  }

  // ---- Start ---------------------------------------------------------------------------

  async function enter() {
    state.me = state.tokens.user;
    $("auth").hidden = true;
    $("chat").hidden = false;
    say($("me-name"), state.me.display_name || state.me.username);
    try {
      // A profile saved while this was on its way is newer than what it brings back.
      const saves = state.profileSaves || 0;
      const me = await api("GET", "/api/v1/users/me");
      state.me = me;
      if ((state.profileSaves || 0) === saves) say($("me-name"), me.display_name);
      await loadChannels();
    } catch (error) {
      if (!state.tokens) return;
      say($("side-error"), error.message);
    }
    connect();
    const first = state.channels.keys().next();
    if (!first.done && state.current == null) await openChannel(first.value);
  }

  function start() {
    $("tab-sign-in").addEventListener("click", () => setMode(false));
    $("tab-register").addEventListener("click", () => setMode(true));
    $("auth-form").addEventListener("submit", submitAuth);
    $("sign-out").addEventListener("click", signOut);
    $("new-channel").addEventListener("submit", createChannel);
    $("direct").addEventListener("submit", openDirect);
    $("join").addEventListener("click", join);
    $("composer").addEventListener("submit", sendMessage);
    $("message").addEventListener("keydown", composerKeys);
    $("thread-message").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        event.target.form.requestSubmit();
      }
    });
    $("thread-composer").addEventListener("submit", reply);
    $("upload").addEventListener("change", upload);
    $("close-thread").addEventListener("click", closeThread);
    $("close-results").addEventListener("click", () => sidePanel(null));
    $("close-settings").addEventListener("click", () => sidePanel(null));
    $("open-settings").addEventListener("click", openSettings);
    $("profile").addEventListener("submit", saveProfile);
    $("password-form").addEventListener("submit", changePassword);
    $("totp-start").addEventListener("submit", startTotp);
    $("totp-confirm").addEventListener("submit", confirmTotp);
    $("totp-off").addEventListener("submit", stopTotp);
    $("end-others").addEventListener("click", endOthers);
    $("search-form").addEventListener("submit", search);
    $("show-channels").addEventListener("click", () => $("chat").classList.toggle("show-sidebar"));
    setMode(false);
    const reset = new URLSearchParams(location.hash.slice(1)).get("reset");
    if (reset) {
      showReset(reset);
      return;
    }
    state.tokens = stored();
    if (state.tokens) enter();
    else showAuth();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
