// The dashboard's only script: it takes the live updates the server
// pushes (Server-Sent Events), tells the server which rooms are on
// screen (only those are watched), draws the meters and sends commands.
"use strict";
(function () {
  const body = document.body;
  const page = body.dataset.page;
  if (page !== "grid" && page !== "room") return;
  const room = body.dataset.room || "";
  const csrfMeta = document.querySelector('meta[name="csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const liveState = document.getElementById("live-state");
  let client = 0;
  let connectedOnce = false;

  // Ages ("3s ago") are counted here from the time the server sent.
  function age(ms) {
    const d = Math.max(0, (Date.now() - ms) / 1000);
    if (d < 60) return Math.floor(d) + "s ago";
    if (d < 3600) return Math.floor(d / 60) + "m ago";
    if (d < 172800) return Math.floor(d / 3600) + "h ago";
    return Math.floor(d / 86400) + "d ago";
  }
  function tickAges() {
    for (const el of document.querySelectorAll(".seen[data-seen]")) {
      const ms = Number(el.dataset.seen);
      el.textContent = ms > 0 ? "seen " + age(ms) : "never seen";
    }
  }
  setInterval(tickAges, 1000);
  tickAges();

  // A level in dBFS as a bar width: -60 dBFS and below is empty.
  function width(db) {
    return Math.max(0, Math.min(100, (db + 60) * 100 / 60)).toFixed(1) + "%";
  }
  function drawMeters(el, channels) {
    const mt = el.querySelector(".mt");
    if (!mt) return;
    const bars = mt.querySelectorAll("i");
    if (bars.length !== channels.length) {
      mt.textContent = "";
      for (let i = 0; i < channels.length; i++) {
        const b = document.createElement("i");
        b.dataset.ch = String(i);
        b.innerHTML = '<b class="rms"></b><b class="pk"></b>';
        mt.appendChild(b);
      }
    }
    mt.querySelectorAll("i").forEach(function (bar, i) {
      const [peak, rms] = channels[i];
      bar.querySelector(".rms").style.width = width(rms);
      bar.querySelector(".pk").style.left = width(peak);
      bar.title = "peak " + peak.toFixed(1) + " dBFS, RMS " + rms.toFixed(1) + " dBFS";
      bar.dataset.peak = String(peak);
      bar.dataset.rms = String(rms);
    });
  }
  function showPreview(el, id, n) {
    const pv = el.querySelector(".pv");
    if (!pv) return;
    let img = pv.querySelector("img");
    if (!img) {
      img = document.createElement("img");
      img.alt = "preview of " + id;
      pv.textContent = "";
      pv.appendChild(img);
    }
    img.hidden = false;
    const np = pv.querySelector(".np");
    if (np) np.remove();
    img.src = "/preview/" + encodeURIComponent(id) + "?n=" + n;
    img.dataset.n = String(n);
  }

  function post(url, bodyText, type) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": type || "application/x-www-form-urlencoded" },
      body: bodyText,
    });
  }

  // The grid: which tiles are on screen decides what is watched.
  const visible = new Set();
  let watchTimer = 0;
  function sendWatch() {
    clearTimeout(watchTimer);
    watchTimer = setTimeout(function () {
      if (!client) return;
      post("/api/watch", JSON.stringify({ client: client, ids: Array.from(visible).slice(0, 100) }), "application/json");
    }, 200);
  }
  const observer = page === "grid" && "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    for (const e of entries) {
      const id = e.target.dataset.id;
      if (e.isIntersecting) visible.add(id); else visible.delete(id);
    }
    sendWatch();
  }) : null;
  function observe(tile) { if (observer) observer.observe(tile); }
  document.querySelectorAll(".tile").forEach(observe);

  function placeTile(id, html) {
    const tmp = document.createElement("div");
    tmp.innerHTML = html;
    const tile = tmp.firstElementChild;
    const old = document.getElementById("t-" + id);
    if (old) {
      // Keep the meters and the preview the browser already shows.
      const oldMt = old.querySelector(".mt"), oldImg = old.querySelector(".pv img");
      const newImg = tile.querySelector(".pv img");
      if (oldMt) tile.querySelector(".mt").replaceWith(oldMt);
      const oldSeen = old.querySelector(".seen"), newSeen = tile.querySelector(".seen");
      if (oldSeen && newSeen) newSeen.dataset.seen = oldSeen.dataset.seen;
      if (oldImg && (!newImg || Number(oldImg.dataset.n || 0) >= Number((newImg.src.split("n=")[1]) || 0))) {
        tile.querySelector(".pv").replaceWith(oldImg.parentElement);
      }
      if (observer) observer.unobserve(old);
      old.replaceWith(tile);
    } else {
      const grid = document.getElementById("grid");
      let before = null;
      for (const t of grid.children) {
        if (t.dataset.id > id) { before = t; break; }
      }
      grid.insertBefore(tile, before);
      const count = document.getElementById("count");
      if (count) count.textContent = grid.children.length + " rooms";
    }
    observe(tile);
  }

  const es = new EventSource("/events" + (room ? "?room=" + encodeURIComponent(room) : ""));
  es.addEventListener("hello", function (e) {
    if (connectedOnce) { location.reload(); return; }
    connectedOnce = true;
    client = JSON.parse(e.data).client;
    if (liveState) { liveState.textContent = "live"; liveState.classList.add("on"); }
    sendWatch();
  });
  es.addEventListener("error", function () {
    if (liveState) { liveState.textContent = "reconnecting…"; liveState.classList.remove("on"); }
  });
  es.addEventListener("tiles", function (e) {
    for (const t of JSON.parse(e.data)) placeTile(t.id, t.html);
    tickAges();
  });
  es.addEventListener("seen", function (e) {
    const seen = JSON.parse(e.data);
    for (const id in seen) {
      const el = document.querySelector("#t-" + CSS.escape(id) + " .seen");
      if (el) el.dataset.seen = String(seen[id]);
    }
    tickAges();
  });
  es.addEventListener("alerts", function (e) {
    document.getElementById("alerts").innerHTML = JSON.parse(e.data);
  });
  es.addEventListener("meters", function (e) {
    const m = JSON.parse(e.data);
    for (const id in m) {
      const el = room ? document.querySelector(".big") : document.getElementById("t-" + id);
      if (el) drawMeters(el, m[id]);
    }
  });
  es.addEventListener("previews", function (e) {
    const p = JSON.parse(e.data);
    for (const id in p) {
      const el = room ? document.querySelector(".big") : document.getElementById("t-" + id);
      if (el) showPreview(el, id, p[id]);
    }
  });
  es.addEventListener("room", function (e) {
    document.getElementById("live").innerHTML = JSON.parse(e.data);
    tickAges();
  });

  // Commands: buttons with data-cmd, anywhere on a room's page.
  const cmdMsg = document.getElementById("cmd-msg");
  document.addEventListener("click", function (e) {
    const btn = e.target.closest("button[data-cmd]");
    if (!btn || !room) return;
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
    const args = new URLSearchParams();
    if (btn.dataset.name) args.set("name", btn.dataset.name);
    post("/api/room/" + encodeURIComponent(room) + "/cmd/" + btn.dataset.cmd, args.toString())
      .then(function (r) { return r.json().then(function (j) { return [r, j]; }); })
      .then(function ([r, j]) {
        if (cmdMsg) cmdMsg.textContent = r.ok ? btn.dataset.cmd + " sent" : (j.error || r.statusText);
      })
      .catch(function (err) { if (cmdMsg) cmdMsg.textContent = String(err); });
  });

  // The config editor: errors by path, from here or from the box.
  const cfg = document.getElementById("cfg");
  if (cfg) {
    cfg.addEventListener("submit", function (e) {
      e.preventDefault();
      const out = document.getElementById("cfg-result");
      out.textContent = "checking…";
      post(cfg.action, document.getElementById("cfg-text").value, "application/yaml")
        .then(function (r) { return r.json().then(function (j) { return [r, j]; }); })
        .then(function ([r, j]) {
          out.textContent = "";
          if (r.ok) {
            const p = document.createElement("p");
            p.className = "ok";
            p.textContent = "Version " + j.version + " sent; the box's report shows below when it comes.";
            out.appendChild(p);
            return;
          }
          const p = document.createElement("p");
          p.className = "err";
          p.textContent = "Not sent: the document has problems.";
          out.appendChild(p);
          const ul = document.createElement("ul");
          ul.className = "errors";
          for (const fe of j.errors || []) {
            const li = document.createElement("li");
            const code = document.createElement("code");
            code.textContent = fe.path || "(document)";
            li.appendChild(code);
            li.appendChild(document.createTextNode(" " + fe.msg));
            ul.appendChild(li);
          }
          out.appendChild(ul);
        })
        .catch(function (err) { out.textContent = String(err); });
    });
  }
})();
