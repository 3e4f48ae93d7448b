// The settings page: one form per plugin, made from its configuration schema
// (GET /api/v1/admin/settings): a checkbox for a boolean, a number field with the schema's
// bounds, a list for a choice, a password field for a secret (never sent to the page; left
// empty, it stays as it is), one line per item for a list of words, JSON for anything else;
// each with its description. Saving sends only the fields the admin changed
// (PUT /api/v1/admin/settings/<plugin>); the server checks them as `plexichat config check`
// does and shows its messages beside the fields.
//
// The admin session is the tab's, as on the home page: its CSRF token is in sessionStorage,
// which only the server's own pages can read. No inline script: the page's policy allows
// this origin's scripts only.
"use strict";

(function () {
  const session = window.PlexiChat.session;
  const $ = (id) => document.getElementById(id);
  const status = $("settings-status");

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  async function admin(method, path, body) {
    const response = await session.request(method, path, body);
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      session.keep(null);
      $("sign-in").hidden = false;
      throw new Error("sign in with the admin token to see and change settings");
    }
    if (!response.ok) {
      const error = new Error(answer.error || `HTTP ${response.status}`);
      error.issues = answer.issues || [];
      throw error;
    }
    return answer;
  }

  // `node` with its `$ref` (into the plugin's definitions) followed.
  function resolve(node, definitions) {
    let seen = 0;
    while (node && node.$ref && seen++ < 10) {
      const name = node.$ref.split("/").pop();
      node = { ...(definitions || {})[name], description: node.description || (definitions || {})[name]?.description };
    }
    if (node && Array.isArray(node.allOf) && node.allOf.length === 1) {
      return { ...resolve(node.allOf[0], definitions), description: node.description };
    }
    return node || {};
  }

  // The choices of an enum schema (`enum`, or `oneOf` of `const`s with descriptions).
  function choices(node) {
    if (Array.isArray(node.enum)) return node.enum.map((value) => ({ value, label: String(value) }));
    if (Array.isArray(node.oneOf) && node.oneOf.every((one) => "const" in one || Array.isArray(one.enum))) {
      return node.oneOf.map((one) => {
        const value = "const" in one ? one.const : one.enum[0];
        return { value, label: one.description ? `${value}: ${one.description}` : String(value) };
      });
    }
    return null;
  }

  function typeOf(node) {
    const type = Array.isArray(node.type) ? node.type.find((t) => t !== "null") : node.type;
    return type;
  }

  // One field: its element, and how to read its value back (`undefined`: leave as it is).
  function field(plugin, key, node, value, secret, definitions) {
    const id = `${plugin}-${key}`;
    const wrap = element("div", null, "setting");
    const label = element("label", key);
    label.htmlFor = id;
    wrap.append(label);
    let input;
    let read;
    const options = choices(node);
    const type = typeOf(node);
    if (options) {
      input = element("select");
      for (const option of options) {
        const item = element("option", option.label);
        item.value = JSON.stringify(option.value);
        if (JSON.stringify(option.value) === JSON.stringify(value)) item.selected = true;
        input.append(item);
      }
      read = () => JSON.parse(input.value);
    } else if (type === "boolean") {
      input = element("input");
      input.type = "checkbox";
      input.checked = value === true;
      read = () => input.checked;
    } else if (type === "integer" || type === "number") {
      input = element("input");
      input.type = "number";
      input.step = type === "integer" ? "1" : "any";
      if (node.minimum !== undefined) input.min = node.minimum;
      if (node.maximum !== undefined) input.max = node.maximum;
      input.value = value ?? "";
      read = () => (input.value === "" ? null : Number(input.value));
    } else if (secret) {
      input = element("input");
      input.type = "password";
      input.autocomplete = "off";
      input.placeholder = "unchanged";
      read = () => (input.value === "" ? undefined : input.value);
    } else if (type === "string") {
      input = element("input");
      input.type = "text";
      input.value = value ?? "";
      read = () => input.value;
    } else if (type === "array" && typeOf(resolve(node.items || {}, definitions)) === "string") {
      input = element("textarea");
      input.rows = 3;
      input.value = (value || []).join("\n");
      read = () => input.value.split("\n").map((line) => line.trim()).filter((line) => line !== "");
      wrap.append(element("span", "one per line", "muted hint"));
    } else {
      input = element("textarea");
      input.rows = 4;
      input.value = JSON.stringify(value, null, 2);
      read = () => JSON.parse(input.value);
    }
    input.id = id;
    input.name = key;
    // Only a field the admin changed is sent: one left alone keeps what is in force, whatever
    // the form can show of it (a masked secret, a value the field cannot hold).
    let touched = false;
    input.addEventListener("input", () => { touched = true; });
    input.addEventListener("change", () => { touched = true; });
    const readValue = read;
    read = () => (touched ? readValue() : undefined);
    wrap.append(input);
    const bounds = [];
    if (node.minimum !== undefined) bounds.push(`at least ${node.minimum}`);
    if (node.maximum !== undefined) bounds.push(`at most ${node.maximum}`);
    const description = [node.description, bounds.join(", ")].filter(Boolean).join(" · ");
    if (description) wrap.append(element("p", description, "muted hint"));
    const problem = element("p", null, "error");
    problem.hidden = true;
    wrap.append(problem);
    return { wrap, read, problem, original: value, secret };
  }

  function render(plugin) {
    const section = element("section", null, "card settings");
    section.dataset.plugin = plugin.plugin;
    section.append(element("h2", plugin.plugin));
    if (plugin.description) section.append(element("p", plugin.description, "muted"));
    const form = element("form");
    // The server checks, with the messages `plexichat config check` gives; the fields keep
    // their bounds as hints.
    form.noValidate = true;
    const schema = resolve(plugin.schema, plugin.definitions);
    const fields = {};
    for (const [key, raw] of Object.entries(schema.properties || {})) {
      const node = resolve(raw, plugin.definitions);
      const secret = plugin.secrets.includes(key);
      fields[key] = field(plugin.plugin, key, node, plugin.values?.[key], secret, plugin.definitions);
      if (plugin.overridden.includes(key)) {
        fields[key].wrap.querySelector("label").append(element("span", " (saved here)", "muted"));
      }
      form.append(fields[key].wrap);
    }
    const actions = element("p", null, "actions");
    const save = element("button", "Save");
    save.type = "submit";
    actions.append(save);
    if (plugin.overridden.length) {
      const reset = element("button", "Back to plexichat.toml", "secondary");
      reset.type = "button";
      reset.addEventListener("click", () => submit(plugin, fields, result, "DELETE"));
      actions.append(" ", reset);
    }
    const result = element("p", null, "result");
    result.setAttribute("role", "status");
    actions.append(result);
    form.append(actions);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit(plugin, fields, result, "PUT");
    });
    section.append(form);
    return section;
  }

  async function submit(plugin, fields, result, method) {
    const changes = {};
    for (const [key, field] of Object.entries(fields)) {
      field.problem.hidden = true;
      let value;
      try {
        value = field.read();
      } catch (error) {
        field.problem.textContent = `not valid JSON: ${error.message}`;
        field.problem.hidden = false;
        return;
      }
      if (value === undefined) continue;
      if (JSON.stringify(value) !== JSON.stringify(field.original)) changes[key] = value;
    }
    if (method === "PUT" && Object.keys(changes).length === 0) {
      result.className = "result";
      result.textContent = "Nothing changed.";
      return;
    }
    try {
      const path = `/api/v1/admin/settings/${encodeURIComponent(plugin.plugin)}`;
      const answer = await admin(method, path, method === "PUT" ? changes : undefined);
      // Said once the forms show what is now in force.
      const kept = answer.kept_by_environment || [];
      const done = method === "PUT"
        ? (kept.length
          ? `Saved, but ${kept.join(", ")} ${kept.length === 1 ? "is" : "are"} set by a PLEXICHAT__ variable or flag, which wins.`
          : "Saved and applied.")
        : "Back to plexichat.toml and the defaults.";
      await load(`${plugin.plugin}: ${done}`);
    } catch (error) {
      result.className = "result error";
      result.textContent = `Not saved: ${error.message}`;
      for (const issue of error.issues || []) {
        const key = (issue.pointer || "").split("/")[3];
        if (fields[key]) {
          fields[key].problem.textContent = issue.problem;
          fields[key].problem.hidden = false;
        }
      }
    }
  }

  async function load(message) {
    try {
      const body = await admin("GET", "/api/v1/admin/settings");
      $("settings-file").textContent = body.file;
      $("plugins").replaceChildren(...body.plugins.map(render));
      $("sign-in").hidden = true;
      status.className = message ? "ok" : "";
      status.textContent = message || "";
    } catch (error) {
      status.className = "error";
      status.textContent = error.message;
    }
  }

  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("admin-token");
    const token = input.value;
    input.value = "";
    try {
      await session.signIn(token);
      await load();
    } catch (error) {
      status.className = "error";
      status.textContent = `Signing in failed: ${error.message}`;
    }
  });

  if (session.csrf() === null) {
    $("sign-in").hidden = false;
    status.textContent = "Sign in with the admin token to see and change settings.";
  } else {
    load();
  }
})();
