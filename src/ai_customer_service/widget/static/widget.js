/*! ai-customer-service web chat widget. Hand-written, no dependencies, no build step.
 * Embed: <script src="https://SERVICE/widget.js" data-site="SITE_KEY" async></script>
 * Optional: data-lang="zh|en", data-user-id + data-user-hash (identity verification),
 * data-open="true" (open on load). Talks only to the service the script came from. */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[data-site][src*="widget.js"]');
  if (!script || window.__csWidgetLoaded) return;
  window.__csWidgetLoaded = true;
  var SITE = script.getAttribute("data-site") || "";
  var BASE = new URL(script.src, location.href).origin;
  var API = BASE + "/api/v1/customer-service/widget/" + encodeURIComponent(SITE);
  var STORE = "cs-widget:" + SITE;
  var lang = (script.getAttribute("data-lang") || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";

  var T = {
    en: {
      open: "Open chat", close: "Close chat", title: "Support", message: "Message", send: "Send",
      placeholder: "Type your question…", sources: "Sources", choices: "Did you mean:",
      joined: "An agent joined the conversation.", typing: "Agent is writing…", you: "You",
      bot: "Assistant", agent: "Agent", error: "Could not send. Tap Send to retry.",
      refused: "This chat is not available on this page.", busy: "Too many messages, please wait a moment.",
      tooLong: "Your message is too long.", rate: "How did we do?", thanks: "Thank you for your rating!",
      star: "Rate {n} of 5", ended: "The agent marked this conversation as solved.", handoff: "Waiting for an agent…",
      offline: "Reconnecting…", log: "Conversation", hello: "Hi! Ask us anything: the assistant answers at once, and a person takes over when you ask for one."
    },
    zh: {
      open: "打开在线客服", close: "关闭对话", title: "在线客服", message: "消息", send: "发送",
      placeholder: "请输入您的问题…", sources: "参考资料", choices: "您是不是想问：",
      joined: "客服人员已加入对话。", typing: "客服正在输入…", you: "我",
      bot: "智能助手", agent: "客服", error: "发送失败，请点击发送重试。",
      refused: "当前页面无法使用在线客服。", busy: "消息太频繁，请稍后再试。",
      tooLong: "消息太长了。", rate: "请为本次服务评分", thanks: "感谢您的评价！",
      star: "{n} 分（满分 5 分）", ended: "客服已将本次对话标记为已解决。", handoff: "正在等待人工客服…",
      offline: "正在重新连接…", log: "对话记录", hello: "您好！有什么可以帮您？智能助手即时回答，需要时可转人工客服。"
    }
  }[lang];

  var CSS = [
    ":host{all:initial;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2430}",
    "*{box-sizing:border-box;font:inherit}",
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#2457d6;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;display:flex;align-items:center;justify-content:center}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f5b400;outline-offset:2px}",
    ".panel{position:fixed;right:20px;bottom:88px;width:min(370px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.28);display:flex;flex-direction:column;overflow:hidden;z-index:2147483647}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#2457d6;color:#fff}",
    "header h2{margin:0;font-size:15px;font-weight:600}",
    "header button{background:transparent;border:0;color:#fff;font-size:20px;cursor:pointer;padding:2px 8px;border-radius:6px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7fb}",
    ".msg{max-width:86%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}",
    ".customer{align-self:flex-end;background:#2457d6;color:#fff}",
    ".bot,.agent{align-self:flex-start;background:#fff;border:1px solid #e1e4ee}",
    ".agent{border-color:#9bc2a5;background:#f1faf3}",
    ".who{display:block;font-size:11px;opacity:.7;margin-bottom:2px}",
    ".pending{opacity:.6}.failed{outline:2px solid #d33}",
    ".note{align-self:center;font-size:12px;color:#5b6170;text-align:center}",
    ".src{margin-top:6px;font-size:12px;color:#4a5064}.src ul{margin:2px 0 0;padding-left:18px}",
    ".choices{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}",
    ".choices button,.stars button{border:1px solid #2457d6;background:#fff;color:#2457d6;border-radius:14px;padding:3px 10px;cursor:pointer;font-size:13px}",
    ".typing{font-size:12px;color:#5b6170;padding:0 14px 4px;min-height:18px;background:#f6f7fb}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e1e4ee;background:#fff}",
    "textarea{flex:1;resize:none;height:40px;padding:8px;border:1px solid #c9cedb;border-radius:8px;color:#1f2430;background:#fff}",
    "form button{border:0;background:#2457d6;color:#fff;border-radius:8px;padding:0 14px;cursor:pointer;font-weight:600}",
    ".stars{display:flex;gap:4px;justify-content:center;margin-top:4px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}"
  ].join("");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  var host = el("div", { id: "cs-widget-host", "data-cs-widget": "" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style"); style.textContent = CSS; root.appendChild(style);
  var launcher = el("button", { class: "launcher", type: "button", "aria-label": T.open, "aria-expanded": "false", "aria-controls": "cs-panel" });
  launcher.innerHTML = '<svg width="26" height="26" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
  var panel = el("section", { class: "panel", id: "cs-panel", role: "dialog", "aria-label": T.title, hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", null, T.title));
  var closeBtn = el("button", { type: "button", "aria-label": T.close }, "×");
  header.appendChild(closeBtn);
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
  var typing = el("div", { class: "typing", "aria-live": "polite" });
  var form = el("form");
  var label = el("label", { class: "sr", for: "cs-input" }, T.message);
  var input = el("textarea", { id: "cs-input", name: "message", placeholder: T.placeholder, "aria-label": T.message, maxlength: "2000", rows: "1" });
  var sendBtn = el("button", { type: "submit" }, T.send);
  form.appendChild(label); form.appendChild(input); form.appendChild(sendBtn);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(form);
  root.appendChild(launcher); root.appendChild(panel);

  var state = { token: null, session: null, seen: {}, lastEventId: null, stream: null, streamFor: null, retry: 0, rated: {} };
  try { state.token = localStorage.getItem(STORE); } catch (e) { /* storage blocked: this tab only */ }

  function headers(extra) {
    var h = { "Content-Type": "application/json" };
    if (state.token) h["X-CS-Visitor-Token"] = state.token;
    for (var k in extra || {}) h[k] = extra[k];
    return h;
  }

  function call(method, path, body) {
    return fetch(API + path, { method: method, headers: headers(), body: body ? JSON.stringify(body) : undefined, mode: "cors", credentials: "omit" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) { var err = new Error((data.error && data.error.code) || "HTTP " + r.status); err.status = r.status; throw err; }
          return data;
        });
      });
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function note(text, first) {
    var n = el("div", { class: "note", role: "status" }, text);
    if (first) log.insertBefore(n, log.firstChild); else log.appendChild(n);
    scrollDown();
  }

  function render(m) {
    if (state.seen[m.id]) return;
    state.seen[m.id] = true;
    if (m.author === "customer") {  // our own message, echoed by the stream before the POST answered
      var boxes = log.querySelectorAll(".pending");
      for (var i = 0; i < boxes.length; i++) {
        if (boxes[i].getAttribute("data-content") === m.content) { boxes[i].setAttribute("data-id", m.id); return; }
      }
    }
    var who = m.author === "customer" ? T.you : m.author === "agent" ? (m.author_name || T.agent) : T.bot;
    var box = el("div", { class: "msg " + (m.author === "customer" ? "customer" : m.author === "agent" ? "agent" : "bot"), "data-id": m.id });
    box.appendChild(el("span", { class: "who" }, who));
    box.appendChild(document.createTextNode(plain(m.content)));
    if (m.citations && m.citations.length) {
      var src = el("div", { class: "src" }, T.sources + ":");
      var ul = el("ul");
      m.citations.forEach(function (c) { ul.appendChild(el("li", null, c.title || c.id)); });
      src.appendChild(ul); box.appendChild(src);
    }
    if (m.choices && m.choices.length) {
      var row = el("div", { class: "choices", role: "group", "aria-label": T.choices });
      m.choices.forEach(function (c) {
        var b = el("button", { type: "button" }, c);
        b.addEventListener("click", function () { send(c); });
        row.appendChild(b);
      });
      box.appendChild(row);
    }
    log.appendChild(box);
    scrollDown();
  }

  function plain(text) { return String(text || "").replace(/\*\*(.+?)\*\*/g, "$1").replace(/^---$/gm, "———"); }

  function setSession(s) {
    if (!s) return;
    state.session = s;
    if (s.with_agent) typing.textContent = "";
    if (state.streamFor !== s.id) openStream(s.id, null);
  }

  function start() {
    var body = null;
    var uid = script.getAttribute("data-user-id"), uhash = script.getAttribute("data-user-hash");
    if (uid && uhash) body = { user_id: uid, user_hash: uhash };
    return call("POST", "/conversation", body).then(function (data) {
      state.token = data.visitor_token;
      try { localStorage.setItem(STORE, state.token); } catch (e) { /* ignore */ }
      if (!data.messages.length) note(T.hello, true);
      data.messages.forEach(render);
      setSession(data.session);
    }, function (err) {
      if (err.status === 403 && state.token && !body) {  // a stale or foreign token: start afresh
        state.token = null;
        try { localStorage.removeItem(STORE); } catch (e) { /* ignore */ }
        return start();
      }
      note(err.status === 429 ? T.busy : T.refused);
      input.disabled = true; sendBtn.disabled = true;
    });
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function send(text, clientId, box) {
    text = String(text || "").trim();
    if (!text) return;
    clientId = clientId || newId();
    if (!box) {
      box = el("div", { class: "msg customer pending", "data-content": text });
      box.appendChild(el("span", { class: "who" }, T.you));
      box.appendChild(document.createTextNode(text));
      log.appendChild(box); scrollDown();
    }
    box.classList.remove("failed");
    (started || Promise.resolve()).then(function () {
      if (!state.token) throw new Error("no visitor token");
      return call("POST", "/messages", { client_message_id: clientId, content: text });
    }).then(function (data) {
      box.classList.remove("pending");
      data.messages.forEach(function (m) {
        if (m.author === "customer") { state.seen[m.id] = true; box.setAttribute("data-id", m.id); } else render(m);
      });
      setSession(data.session);
    }, function (err) {
      box.classList.add("failed");
      note(err.status === 429 ? T.busy : err.message === "CS_WGT_4001" ? T.tooLong : T.error);
      state.retryLast = function () { send(text, clientId, box); };  // same client id: exactly once
    });
  }

  // the live stream: server-sent events read with fetch (the visitor token stays out of URLs)
  function openStream(sessionId, after) {
    if (state.stream) state.stream.abort();
    var ctrl = window.AbortController ? new AbortController() : null;
    state.stream = ctrl; state.streamFor = sessionId;
    var h = headers({ Accept: "text/event-stream" });
    delete h["Content-Type"];
    var last = after || state.lastEventId;
    if (last) h["Last-Event-ID"] = last;
    fetch(API + "/stream?session_id=" + encodeURIComponent(sessionId), { headers: h, mode: "cors", credentials: "omit", signal: ctrl && ctrl.signal })
      .then(function (r) {
        if (!r.ok || !r.body) throw new Error("stream " + r.status);
        state.retry = 0;
        var reader = r.body.getReader(), decoder = new TextDecoder(), buf = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("stream ended");
            buf += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
            var cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) { onFrame(buf.slice(0, cut)); buf = buf.slice(cut + 2); }
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        if (ctrl && ctrl.signal.aborted) return;
        if (state.streamFor !== sessionId) return;
        typing.textContent = T.offline;
        state.retry = Math.min(state.retry + 1, 6);
        setTimeout(function () { if (state.streamFor === sessionId) openStream(sessionId, null); }, 500 * state.retry);
      });
  }

  function onFrame(frame) {
    var type = "message", data = "", id = null;
    frame.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) type = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
      else if (line.indexOf("id:") === 0) id = line.slice(3).trim();
    });
    if (id) state.lastEventId = id;
    if (!data) return;
    var ev; try { ev = JSON.parse(data); } catch (e) { return; }
    if (type === "ready" || type === "reset") {
      if (typing.textContent === T.offline) typing.textContent = "";
      call("GET", "/messages").then(function (d) { d.messages.forEach(render); }, function () {});
    } else if (type === "message") {
      if (ev.author !== "customer") typing.textContent = "";
      render(ev);
    } else if (type === "agent_joined") {
      note(T.joined);
    } else if (type === "typing") {
      typing.textContent = ev.active ? T.typing : "";
      clearTimeout(state.typingTimer);
      if (ev.active) state.typingTimer = setTimeout(function () { typing.textContent = ""; }, 8000);
    } else if (type === "handoff") {
      note(T.handoff);
    } else if (type === "status" && (ev.status === "resolved" || ev.status === "closed")) {
      askRating();
    }
  }

  function askRating() {
    var s = state.session;
    if (!s || state.rated[s.id] || log.querySelector(".stars")) return;
    var box = el("div", { class: "note" }, T.ended + " " + T.rate);
    var stars = el("div", { class: "stars", role: "group", "aria-label": T.rate });
    [1, 2, 3, 4, 5].forEach(function (n) {
      var b = el("button", { type: "button", "aria-label": T.star.replace("{n}", n) }, "★" + n);
      b.addEventListener("click", function () {
        call("POST", "/feedback", { session_id: s.id, score: n }).then(function () {
          state.rated[s.id] = true; box.textContent = T.thanks;
        }, function () { box.textContent = T.error; });
      });
      stars.appendChild(b);
    });
    box.appendChild(stars); log.appendChild(box); scrollDown();
  }

  var started = null;
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", T.close);
    try { sessionStorage.setItem(STORE + ":open", "1"); } catch (e) { /* ignore */ }
    if (!started) started = start();
    input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", T.open);
    try { sessionStorage.removeItem(STORE + ":open"); } catch (e) { /* ignore */ }
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(e); }
  });
  var lastTyping = 0;
  input.addEventListener("input", function () {
    var now = Date.now();
    if (state.session && state.session.with_agent && now - lastTyping > 4000) {
      lastTyping = now;
      call("POST", "/typing", { session_id: state.session.id, active: true }).catch(function () {});
    }
  });
  function submit(e) {
    e.preventDefault();
    if (!input.value.trim() && state.retryLast) { var r = state.retryLast; state.retryLast = null; r(); return; }
    var text = input.value; input.value = ""; send(text);
  }
  form.addEventListener("submit", submit);

  function mount() {
    document.body.appendChild(host);
    var again = false;
    try { again = sessionStorage.getItem(STORE + ":open") === "1"; } catch (e) { /* ignore */ }
    if (again || script.getAttribute("data-open") === "true") open();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
