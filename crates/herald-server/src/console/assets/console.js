// Herald console: the one script. Every page works without it; it adds the
// self-refreshing lists, copy buttons, secret generation and checking a
// monitor's query as it is typed.
"use strict";

// A list marked data-refresh reloads its rows every few seconds while the
// page is visible, from data-refresh-url (the page's own address when the
// page answered a form).
function startRefreshing(list) {
  const seconds = Number(list.dataset.refresh) || 5;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const url = list.dataset.refreshUrl || window.location.href;
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(list.id);
      if (fresh) list.replaceChildren(...fresh.childNodes);
    } catch (_) {
      // Offline for a moment: the next tick tries again.
    }
  }, seconds * 1000);
}

// A button with data-copy copies the text of the element it names.
function enableCopy(button) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.value !== undefined ? source.value : source.textContent;
    await navigator.clipboard.writeText(text.trim());
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

// A button with data-generate fills the input it names with a new
// Standard Webhooks secret (whsec_ and 24 random bytes in base64).
function enableGenerate(button) {
  button.hidden = false;
  button.addEventListener("click", () => {
    const input = document.getElementById(button.dataset.generate);
    const bytes = new Uint8Array(24);
    crypto.getRandomValues(bytes);
    input.value = "whsec_" + btoa(String.fromCharCode(...bytes));
    input.type = "text";
  });
}

// An input with data-check-query asks the server whether its query parses
// while the person types, and shows the reason at its position.
function enableQueryCheck(input) {
  const output = document.getElementById(input.getAttribute("aria-describedby"));
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const url = input.dataset.checkQuery + "?query=" + encodeURIComponent(input.value);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const check = await response.json();
      output.replaceChildren();
      input.setAttribute("aria-invalid", String(!check.ok));
      if (check.ok) {
        const ok = document.createElement("p");
        ok.className = "query-ok";
        ok.textContent = "✓ The query is valid.";
        output.append(ok);
        return;
      }
      const box = document.createElement("div");
      box.className = "query-error";
      box.setAttribute("role", "alert");
      if (check.position !== null) {
        // The position is a byte offset into the UTF-8 query.
        const bytes = new TextEncoder().encode(input.value);
        const before = new TextDecoder().decode(bytes.slice(0, check.position));
        const rest = input.value.slice(before.length);
        const pre = document.createElement("pre");
        pre.className = "query";
        const mark = document.createElement("mark");
        mark.textContent = rest.slice(0, 1) || " ";
        pre.append(before, mark, rest.slice(1));
        box.append(pre);
      }
      const message = document.createElement("p");
      message.className = "field-error";
      message.textContent = check.message;
      box.append(message);
      output.append(box);
    }, 250);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input[data-check-query]").forEach(enableQueryCheck);
  document.querySelectorAll("[data-refresh]").forEach(startRefreshing);
  document.querySelectorAll("button[data-copy]").forEach(enableCopy);
  document.querySelectorAll("button[data-generate]").forEach(enableGenerate);
});
