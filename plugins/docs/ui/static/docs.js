// Live search for /docs: results from /docs/search appear under the box as you type. The
// form still works without this script (it loads /docs?q=…). No inline script: the server's
// Content-Security-Policy allows scripts from this origin only.
"use strict";

(function () {
  const input = document.getElementById("q");
  const live = document.getElementById("live-results");
  if (!input || !live) {
    return;
  }
  let timer = null;
  let latest = 0;

  function clear() {
    live.replaceChildren();
  }

  async function run(query) {
    const ticket = ++latest;
    const response = await fetch(`/docs/search?q=${encodeURIComponent(query)}&limit=8`, {
      headers: { Accept: "application/json" },
    });
    if (ticket !== latest) {
      return;
    }
    if (!response.ok) {
      clear();
      return;
    }
    const body = await response.json();
    const list = document.createElement("ol");
    for (const hit of body.results) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = hit.url;
      link.textContent = hit.section ? `${hit.title} › ${hit.section}` : hit.title;
      const plugin = document.createElement("span");
      plugin.className = "plugin";
      plugin.textContent = ` ${hit.plugin}`;
      const snippet = document.createElement("p");
      // The server escaped the text and added only <mark> elements.
      snippet.innerHTML = hit.snippet;
      item.append(link, plugin, snippet);
      list.append(item);
    }
    const heading = document.createElement("p");
    heading.textContent = body.results.length
      ? `${body.results.length} result${body.results.length === 1 ? "" : "s"} (Enter for all)`
      : "No doc mentions these words.";
    live.replaceChildren(heading, list);
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (!query) {
      latest++;
      clear();
      return;
    }
    timer = setTimeout(() => run(query).catch(clear), 120);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      latest++;
      clear();
    }
  });
})();
