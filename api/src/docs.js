"use strict";
const text = (tag, content, cls) => { const el = document.createElement(tag); el.textContent = content; if (cls) el.className = cls; return el; };
async function load() {
  const spec = await (await fetch("/openapi.json")).json();
  const main = document.getElementById("operations");
  main.textContent = "";
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) main.appendChild(operation(path, method, op));
  }
}
function operation(path, method, op) {
  const box = document.createElement("details");
  const summary = document.createElement("summary");
  summary.append(text("span", method.toUpperCase(), "method"), text("span", path));
  box.appendChild(summary);
  if (op.description || op.summary) box.appendChild(text("p", op.summary || op.description));
  const params = [...path.matchAll(/\{(\w+)\}/g)].map(m => m[1]);
  const inputs = {};
  for (const name of params) {
    box.appendChild(text("label", name));
    inputs[name] = document.createElement("input");
    box.appendChild(inputs[name]);
  }
  let body = null;
  if (op.requestBody) {
    box.appendChild(text("label", "body"));
    body = document.createElement("textarea");
    body.value = "{}";
    box.appendChild(body);
  }
  const send = text("button", "Send");
  const out = text("pre", "");
  send.addEventListener("click", async () => {
    const url = path.replace(/\{(\w+)\}/g, (_, n) => encodeURIComponent(inputs[n].value));
    const init = { method: method.toUpperCase(), headers: {} };
    if (body) { init.body = body.value; init.headers["content-type"] = "application/json"; }
    const response = await fetch(url, init);
    out.textContent = response.status + " " + response.statusText + "\n" + await response.text();
  });
  box.append(send, out);
  return box;
}
load().catch(error => { document.getElementById("operations").textContent = "Cannot load the API description: " + error; });
