// Backdesk remote session: the technician's live view of a device (session.html).
//
// One websocket to /ws/viewer/<id> carries JSON text messages with the coordinator
// (session, state, ping/pong, end) and binary messages with the agent, end-to-end
// encrypted (docs/remote-sessions.md): our hello (0x01), the agent's hello (0x02), then
// sealed messages (0x03) that only this page and the agent can read. Everything shown
// is set through textContent (never HTML), and no style is inline (the CSP forbids
// it): sizes go through the CSSOM.

import { E2EError, startViewerHandshake } from "./e2e.js";
import {
  Encoding,
  decodeMessage,
  encodeAck,
  encodeChat,
  encodeInput,
  encodeMonitor,
} from "./remote-codec.js";

const AGENT_HELLO = 0x02;
const SEALED = 0x03;
const PING_INTERVAL_MS = 2000;
const STATS_INTERVAL_MS = 1000;
const MAX_CHAT_BYTES = 2000;
const FORGED = "replayed, reordered or forged frame";
const KEY_CODE = /^[A-Za-z0-9]{1,32}$/;
const CURSOR_MIN_SCALE = 0.75;

const STATE_TEXT = {
  connecting: "Connecting",
  pending: "Waiting for the device",
  awaiting_consent: "Waiting for the user's consent",
  live: "Live",
  ended: "Ended",
};

const REASON_TEXT = {
  denied: "the user declined",
  timeout: "the user did not answer",
  ended_by_user: "by the user",
  ended_by_technician: "by you",
  technician: "by you",
  viewer_gone: "this browser disconnected",
  agent_gone: "the device disconnected",
  protocol_error: FORGED,
  expired: "the request expired",
};

/** A plaintext the codec could not read: it ends the session like a forged frame. */
class DecodeError extends Error {}

const $ = (id) => document.getElementById(id);

function reasonText(reason) {
  if (!reason) return "";
  return REASON_TEXT[reason] ?? String(reason).replaceAll("_", " ");
}

function base64ToBytes(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function formatCode(code) {
  return code && code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code ?? "";
}

function start(root) {
  const sessionId = root.dataset.sessionId;
  const device = root.dataset.device || "the device";
  const canvas = $("screen");
  const ctx = canvas.getContext("2d", { alpha: false });
  const cursorCanvas = $("cursor");
  const cursorCtx = cursorCanvas.getContext("2d");
  const stage = $("stage");
  const overlay = $("overlay");
  const overlayText = $("overlay-text");
  const inputHint = $("input-hint");
  const pill = $("state");
  const pillText = $("state-text");
  const scopeBadge = $("scope-badge");
  const codeBanner = $("code-banner");
  const codeEl = $("code");
  const codeSmall = $("code-small");
  const monitorSelect = $("monitor");
  const chatLog = $("chat-log");
  const chatForm = $("chat-form");
  const chatInput = $("chat-input");
  const chatSend = $("chat-send");
  const endButton = $("end-session");

  // What tests (and curious technicians in the devtools) can read.
  const view = {
    state: root.dataset.state || "pending",
    scope: root.dataset.scope || "view",
    reason: root.dataset.reason || "",
    code: "",
    framesDrawn: 0,
    lastSeq: null,
    error: "",
  };
  window.backdeskViewer = view;

  let grantedScope = view.scope;
  let peer = false;
  let handshake = null; // Promise of {hello, finish}
  let channel = null;
  let failed = false;
  let closed = false;
  let receiving = Promise.resolve();
  let sending = Promise.resolve();
  let ws = null;
  let pingTimer = null;
  let bytesIn = 0;

  // --- state and what the page shows --------------------------------------------------

  function controlling() {
    return view.state === "live" && grantedScope === "control" && channel !== null && !failed;
  }

  function render() {
    const state = view.state;
    pill.className = `state-pill state-${state}`;
    let text = STATE_TEXT[state] ?? state;
    if (state === "ended" && view.reason) text += ` — ${reasonText(view.reason)}`;
    pillText.textContent = text;

    scopeBadge.textContent = grantedScope === "control" ? "Control" : "View only";
    scopeBadge.className = `badge scope scope-${grantedScope === "control" ? "control" : "view"}`;

    const waiting = state !== "live" && state !== "ended";
    codeBanner.hidden = !(view.code && waiting);
    codeEl.textContent = formatCode(view.code);
    codeSmall.textContent = view.code ? formatCode(view.code) : "—";

    const hasScreen = canvas.width > 0 && canvas.height > 0;
    stage.classList.toggle("has-screen", hasScreen);
    overlay.classList.toggle("ended", state === "ended");
    overlay.classList.toggle("failed", failed);
    let message = "";
    if (state === "ended") {
      const why = reasonText(view.reason);
      if (!why) message = "Session ended";
      else if (why.startsWith("by ")) message = `Session ended ${why}`;
      else message = `Session ended: ${why}`;
    } else if (state === "connecting") {
      message = "Connecting…";
    } else if (state === "pending") {
      message =
        peer || channel
          ? `Setting up the session with ${device}…`
          : `Waiting for ${device} to connect…`;
    } else if (state === "awaiting_consent") {
      message = view.code
        ? `Waiting for the user of ${device} to allow the session. Read them the code above.`
        : `Waiting for the user of ${device} to allow the session…`;
    } else if (state === "live" && !hasScreen) {
      message = "Waiting for the first picture of the screen…";
    }
    overlay.hidden = message === "";
    overlayText.textContent = message;

    const control = controlling();
    root.classList.toggle("controlling", control);
    if (state === "live" && hasScreen) {
      inputHint.hidden = control && document.activeElement === canvas;
      inputHint.classList.toggle("fades", !control); // said once, then out of the way
      inputHint.textContent = control
        ? "Click the screen to use the remote mouse and keyboard"
        : "View only: your mouse and keyboard are not sent";
    } else {
      inputHint.hidden = true;
    }

    const live = state === "live" && channel !== null && !failed;
    chatInput.disabled = !live;
    chatSend.disabled = !live;
    monitorSelect.disabled = !live || monitorSelect.options.length < 2;
    endButton.disabled = state === "ended" || closed;
    showCursor();
  }

  function setState(state, reason) {
    view.state = state;
    if (reason !== undefined && reason !== null && reason !== "") view.reason = String(reason);
    if (state !== "live") releaseAll(false);
    render();
  }

  /** The end of the session because something did not authenticate or decode. */
  function fail(err) {
    if (failed) return;
    failed = true;
    let message;
    if (err instanceof E2EError) message = err.message || FORGED;
    else if (err instanceof DecodeError) message = err.message || "undecodable message";
    else message = err?.message || String(err);
    view.error = message;
    console.error("remote session:", err);
    view.state = "ended";
    view.reason = message;
    releaseAll(false);
    render();
    // Tell the coordinator why, so the ticket's record says "protocol error".
    sendText({ type: "end", reason: "protocol_error" });
    try {
      ws?.close(1000, "protocol error");
    } catch {
      // already closed
    }
  }

  function sendText(obj) {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function ping() {
    sendText({ type: "ping", t: performance.now() });
  }

  function onText(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "session":
        if (msg.scope) grantedScope = msg.scope;
        view.scope = grantedScope;
        if (!handshake) {
          handshake = beginHandshake(msg);
          handshake.catch(fail);
        }
        render();
        break;
      case "state":
        if (typeof msg.peer === "boolean") peer = msg.peer;
        if (msg.scope === "view" || msg.scope === "control") {
          grantedScope = msg.scope;
          view.scope = msg.scope;
        }
        if (typeof msg.state === "string") setState(msg.state, msg.reason);
        else render();
        break;
      case "pong":
        if (typeof msg.t === "number") showLatency(performance.now() - msg.t);
        break;
      case "error":
        if (msg.message) view.reason = String(msg.message);
        render();
        break;
      default:
        break;
    }
  }

  async function beginHandshake(info) {
    const deviceKey = base64ToBytes(String(info.device_key ?? ""));
    const hs = await startViewerHandshake(String(info.id ?? sessionId), deviceKey);
    if (ws?.readyState === WebSocket.OPEN) ws.send(hs.hello);
    return hs;
  }

  async function onBinary(bytes) {
    const kind = bytes[0];
    if (kind === AGENT_HELLO) {
      if (channel || !handshake) throw new E2EError("unexpected handshake message");
      const hs = await handshake;
      channel = await hs.finish(bytes);
      view.code = String(channel.code);
      render();
      return;
    }
    if (kind !== SEALED || !channel) {
      throw new E2EError(FORGED);
    }
    let plain;
    try {
      plain = await channel.open(bytes);
    } catch (err) {
      if (err instanceof E2EError) throw new E2EError(FORGED);
      throw err;
    }
    let msg;
    try {
      msg = decodeMessage(plain);
    } catch (err) {
      const why = String(err?.message ?? err).replace(/^session message: /, "");
      throw new DecodeError(`malformed message from the device (${why})`);
    }
    await onMessage(msg);
  }

  /** Seal and send, in order: each seal waits for the one before it. */
  function sendSealed(plain) {
    // The relay forwards our sealed messages only while the session is live.
    if (!channel || failed || closed || view.state !== "live") return;
    sending = sending
      .then(async () => {
        if (failed || closed) return;
        const sealed = await channel.seal(plain);
        if (ws?.readyState === WebSocket.OPEN) ws.send(sealed);
      })
      .catch(fail);
  }

  // --- what the agent sends -----------------------------------------------------------

  async function onMessage(msg) {
    switch (msg?.type) {
      case "frame": {
        const resized = await drawFrame(msg);
        view.framesDrawn += 1;
        view.lastSeq = msg.seq;
        framesThisSecond += 1;
        sendSealed(encodeAck(msg.seq));
        if (resized || view.framesDrawn === 1) render();
        break;
      }
      case "cursor":
        await setCursor(msg);
        break;
      case "screens":
        fillMonitors(msg);
        render();
        break;
      case "chat":
        addChat("them", msg.text);
        break;
      default:
        break;
    }
  }

  /** Paint one frame; true when the remote screen changed size. */
  async function drawFrame(frame) {
    const resized = canvas.width !== frame.width || canvas.height !== frame.height;
    if (resized) {
      canvas.width = frame.width;
      canvas.height = frame.height;
      fit();
    }
    // Decode every picture of the frame at once, then paint in order.
    let bitmaps;
    try {
      bitmaps = await Promise.all(
        frame.rects.map((r) => {
          if (r.encoding !== Encoding.JPEG && r.encoding !== Encoding.PNG) return null;
          const type = r.encoding === Encoding.JPEG ? "image/jpeg" : "image/png";
          // Pixels exactly as sent: the agent models this canvas to compute its updates.
          return createImageBitmap(new Blob([r.data], { type }), { colorSpaceConversion: "none" });
        }),
      );
    } catch (err) {
      const why = err?.message ?? err;
      throw new DecodeError(`a picture of frame ${frame.seq} does not decode (${why})`);
    }
    frame.rects.forEach((r, i) => {
      switch (r.encoding) {
        case Encoding.JPEG:
        case Encoding.PNG:
          ctx.drawImage(bitmaps[i], r.x, r.y, r.w, r.h);
          bitmaps[i].close();
          break;
        case Encoding.COPY: {
          const [sx, sy] = copySource(r);
          ctx.drawImage(canvas, sx, sy, r.w, r.h, r.x, r.y, r.w, r.h);
          break;
        }
        case Encoding.FILL: {
          const [red, green, blue] = fillColour(r);
          ctx.fillStyle = `rgb(${red}, ${green}, ${blue})`;
          ctx.fillRect(r.x, r.y, r.w, r.h);
          break;
        }
        default:
          throw new DecodeError(`unknown encoding ${r.encoding}`);
      }
    });
    return resized;
  }

  function copySource(r) {
    if (Number.isInteger(r.srcX) && Number.isInteger(r.srcY)) return [r.srcX, r.srcY];
    if (Number.isInteger(r.sx) && Number.isInteger(r.sy)) return [r.sx, r.sy];
    const d = r.data;
    if (!d || d.length !== 4) throw new DecodeError("copy rect without a source");
    return [(d[0] << 8) | d[1], (d[2] << 8) | d[3]];
  }

  function fillColour(r) {
    if (Array.isArray(r.rgb)) return r.rgb;
    const d = r.data;
    if (!d || d.length !== 3) throw new DecodeError("fill rect without a colour");
    return [d[0], d[1], d[2]];
  }

  function fillMonitors(screens) {
    const keep = Number(monitorSelect.value);
    monitorSelect.replaceChildren();
    const monitors = [...(screens.monitors ?? [])].sort((a, b) => a.index - b.index);
    if (!monitors.some((m) => m.index === 0)) monitors.unshift({ index: 0 });
    for (const m of monitors) {
      const option = document.createElement("option");
      option.value = String(m.index);
      option.textContent =
        m.index === 0
          ? "All monitors"
          : `Monitor ${m.index}${m.width ? ` · ${m.width} × ${m.height}` : ""}`;
      monitorSelect.append(option);
    }
    const current = Number.isInteger(screens.current) ? screens.current : keep;
    monitorSelect.value = String(current);
  }

  monitorSelect.addEventListener("change", () => {
    if (view.state !== "live") return;
    sendSealed(encodeMonitor(Number(monitorSelect.value)));
    canvas.focus();
  });

  // --- remote cursor ------------------------------------------------------------------

  const cursor = { x: 0, y: 0, hotX: 0, hotY: 0, seen: false, shaped: false };

  function drawDefaultArrow() {
    cursorCanvas.width = 14;
    cursorCanvas.height = 21;
    cursorCtx.clearRect(0, 0, 14, 21);
    cursorCtx.beginPath();
    const points = [
      [1, 1], [1, 17], [5, 13], [8, 19.5], [10.5, 18.5], [7.5, 12.5], [12.5, 12.5],
    ];
    points.forEach(([x, y], i) => (i ? cursorCtx.lineTo(x, y) : cursorCtx.moveTo(x, y)));
    cursorCtx.closePath();
    cursorCtx.fillStyle = "#fff";
    cursorCtx.strokeStyle = "#000";
    cursorCtx.lineWidth = 1.2;
    cursorCtx.lineJoin = "round";
    cursorCtx.fill();
    cursorCtx.stroke();
    cursor.hotX = 1;
    cursor.hotY = 1;
  }

  async function setCursor(msg) {
    cursor.x = msg.x;
    cursor.y = msg.y;
    cursor.seen = true;
    if (msg.png && msg.png.length) {
      let bitmap;
      try {
        bitmap = await createImageBitmap(new Blob([msg.png], { type: "image/png" }));
      } catch (err) {
        throw new DecodeError(`the cursor shape does not decode (${err?.message ?? err})`);
      }
      cursorCanvas.width = bitmap.width;
      cursorCanvas.height = bitmap.height;
      cursorCtx.clearRect(0, 0, bitmap.width, bitmap.height);
      cursorCtx.drawImage(bitmap, 0, 0);
      bitmap.close();
      cursor.hotX = msg.hotX ?? 0;
      cursor.hotY = msg.hotY ?? 0;
      cursor.shaped = true;
    } else if (!cursor.shaped && cursorCanvas.width === 0) {
      drawDefaultArrow();
    }
    showCursor();
  }

  function showCursor() {
    const visible =
      cursor.seen && view.state === "live" && canvas.width > 0 && cursorCanvas.width > 0;
    cursorCanvas.hidden = !visible;
    if (!visible) return;
    const scale = displayScale();
    // The pointer shrinks with the picture, but not so much that it cannot be seen.
    const s = Math.min(1, Math.max(CURSOR_MIN_SCALE, scale));
    cursorCanvas.style.width = `${cursorCanvas.width * s}px`;
    cursorCanvas.style.height = `${cursorCanvas.height * s}px`;
    const left = cursor.x * scale - cursor.hotX * s;
    const top = cursor.y * scale - cursor.hotY * s;
    cursorCanvas.style.transform = `translate(${left}px, ${top}px)`;
  }

  // --- fitting the picture to the stage -----------------------------------------------

  function displayScale() {
    const rect = canvas.getBoundingClientRect();
    return canvas.width > 0 && rect.width > 0 ? rect.width / canvas.width : 1;
  }

  function fit() {
    if (canvas.width === 0 || canvas.height === 0) {
      canvas.style.width = "0px";
      canvas.style.height = "0px";
      return;
    }
    const margin = 16;
    const availableWidth = Math.max(1, stage.clientWidth - margin * 2);
    const availableHeight = Math.max(1, stage.clientHeight - margin * 2);
    const scale = Math.min(availableWidth / canvas.width, availableHeight / canvas.height);
    canvas.style.width = `${Math.floor(canvas.width * scale)}px`;
    canvas.style.height = `${Math.floor(canvas.height * scale)}px`;
    showCursor();
  }

  new ResizeObserver(fit).observe(stage);
  fit();

  // --- input (control scope, live session, canvas focused) ----------------------------

  const buttonsDown = new Set();
  const keysDown = new Set();
  let pendingMove = null;
  let lastMove = null;
  let moveScheduled = false;

  function remotePoint(event) {
    const rect = canvas.getBoundingClientRect();
    if (!rect.width || !rect.height || !canvas.width || !canvas.height) return null;
    const x = Math.floor(((event.clientX - rect.left) * canvas.width) / rect.width);
    const y = Math.floor(((event.clientY - rect.top) * canvas.height) / rect.height);
    return {
      x: Math.min(canvas.width - 1, Math.max(0, x)),
      y: Math.min(canvas.height - 1, Math.max(0, y)),
    };
  }

  function sendInput(obj) {
    if (controlling()) sendSealed(encodeInput(obj));
  }

  function flushMove() {
    moveScheduled = false;
    const point = pendingMove;
    pendingMove = null;
    if (!point || !controlling()) return;
    if (lastMove && lastMove.x === point.x && lastMove.y === point.y) return;
    lastMove = point;
    sendInput({ t: "move", x: point.x, y: point.y });
  }

  function releaseAll(send) {
    for (const b of buttonsDown) if (send) sendInput({ t: "button", b, down: false });
    for (const code of keysDown) if (send) sendInput({ t: "key", code, down: false });
    buttonsDown.clear();
    keysDown.clear();
  }

  canvas.addEventListener("mousemove", (event) => {
    if (!controlling()) return;
    const point = remotePoint(event);
    if (!point) return;
    pendingMove = point;
    if (!moveScheduled) {
      moveScheduled = true;
      requestAnimationFrame(flushMove);
    }
  });

  canvas.addEventListener("mousedown", (event) => {
    event.preventDefault();
    canvas.focus();
    if (!controlling()) return;
    const point = remotePoint(event);
    const b = { 0: 1, 1: 2, 2: 3 }[event.button];
    if (!point || !b) return;
    pendingMove = point;
    flushMove(); // the pointer goes where the click is before the button goes down
    buttonsDown.add(b);
    sendInput({ t: "button", b, down: true });
  });

  window.addEventListener("mouseup", (event) => {
    const b = { 0: 1, 1: 2, 2: 3 }[event.button];
    if (!b || !buttonsDown.has(b)) return;
    buttonsDown.delete(b);
    if (event.target === canvas) {
      const point = remotePoint(event);
      if (point) {
        pendingMove = point;
        flushMove();
      }
    }
    sendInput({ t: "button", b, down: false });
  });

  canvas.addEventListener("contextmenu", (event) => event.preventDefault());

  let wheelX = 0;
  let wheelY = 0;
  const NOTCH = 100; // pixels of a touchpad's smooth scrolling per notch

  canvas.addEventListener(
    "wheel",
    (event) => {
      if (!controlling()) return;
      event.preventDefault();
      const unit = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? 800 : 1;
      const notches = (delta, rest) => {
        const pixels = delta * unit;
        // A mouse wheel's step is one notch at once; small touchpad steps add up.
        if (Math.abs(pixels) >= NOTCH / 2) return [Math.sign(pixels), 0];
        const sum = rest + pixels;
        if (Math.abs(sum) >= NOTCH) return [Math.sign(sum), 0];
        return [0, sum];
      };
      let dx;
      let dy;
      [dx, wheelX] = notches(event.deltaX, wheelX);
      [dy, wheelY] = notches(event.deltaY, wheelY);
      if (!dx && !dy) return;
      const point = remotePoint(event);
      if (point) {
        pendingMove = point;
        flushMove();
      }
      sendInput({ t: "wheel", dx, dy });
    },
    { passive: false },
  );

  canvas.addEventListener("keydown", (event) => {
    if (!controlling()) return;
    if (!KEY_CODE.test(event.code)) return; // an IME composition or an unknown key
    event.preventDefault();
    keysDown.add(event.code);
    sendInput({ t: "key", code: event.code, down: true }); // repeats go as repeats
  });

  canvas.addEventListener("keyup", (event) => {
    if (!controlling()) return;
    if (!KEY_CODE.test(event.code)) return;
    event.preventDefault();
    keysDown.delete(event.code);
    sendInput({ t: "key", code: event.code, down: false });
  });

  // Nothing stays pressed on the remote computer when the focus goes elsewhere.
  canvas.addEventListener("blur", () => {
    releaseAll(true);
    render();
  });
  canvas.addEventListener("focus", render);

  // --- chat ---------------------------------------------------------------------------

  function addChat(who, text) {
    $("chat-empty")?.remove();
    const item = document.createElement("li");
    item.className = who === "me" ? "chat-me" : "chat-them";
    const name = document.createElement("span");
    name.className = "chat-who";
    name.textContent = who === "me" ? "You" : "User";
    item.append(name, document.createTextNode(String(text)));
    chatLog.append(item);
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = chatInput.value.trim();
    if (!text || view.state !== "live" || !channel) return;
    if (new TextEncoder().encode(text).length > MAX_CHAT_BYTES) {
      chatInput.setCustomValidity("That message is too long.");
      chatInput.reportValidity();
      return;
    }
    chatInput.setCustomValidity("");
    sendSealed(encodeChat(text));
    addChat("me", text);
    chatInput.value = "";
  });
  chatInput.addEventListener("input", () => chatInput.setCustomValidity(""));

  // --- end ----------------------------------------------------------------------------

  endButton.addEventListener("click", () => {
    endButton.disabled = true;
    endButton.textContent = "Ending…";
    if (ws?.readyState === WebSocket.OPEN) {
      sendText({ type: "end", reason: "technician" });
    } else {
      setState("ended", "technician");
    }
  });

  window.addEventListener("pagehide", () => {
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  });

  // --- quality ------------------------------------------------------------------------

  let framesThisSecond = 0;
  let statsAt = performance.now();
  const fpsEl = $("fps");
  const latencyEl = $("latency");
  const kbpsEl = $("kbps");

  function showLatency(ms) {
    latencyEl.textContent = String(Math.max(0, Math.round(ms)));
  }

  const statsTimer = setInterval(() => {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - statsAt) / 1000);
    if (view.state === "live" && !closed) {
      fpsEl.textContent = String(Math.round(framesThisSecond / seconds));
      kbpsEl.textContent = String(Math.round((bytesIn * 8) / 1000 / seconds));
    } else if (closed) {
      fpsEl.textContent = "–";
      kbpsEl.textContent = "–";
      clearInterval(statsTimer);
    }
    framesThisSecond = 0;
    bytesIn = 0;
    statsAt = now;
  }, STATS_INTERVAL_MS);

  // --- the socket (opened last, once everything above is set up) ---------------------

  function connect() {
    if (view.state === "ended") {
      closed = true; // nothing to join: the page shows how the session ended
      render();
      return;
    }
    view.state = "connecting";
    render();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/ws/viewer/${encodeURIComponent(sessionId)}`);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", () => {
      if (view.state === "connecting") setState("pending");
      ping();
      pingTimer = setInterval(ping, PING_INTERVAL_MS);
    });

    ws.addEventListener("message", (event) => {
      if (failed) return;
      if (typeof event.data === "string") {
        onText(event.data);
        return;
      }
      bytesIn += event.data.byteLength;
      const bytes = new Uint8Array(event.data);
      // Strictly in order: each message waits for the one before it (opening, decoding
      // and drawing are asynchronous, and the counters only accept the next message).
      receiving = receiving.then(() => (failed ? undefined : onBinary(bytes))).catch(fail);
    });

    ws.addEventListener("close", (event) => {
      closed = true;
      clearInterval(pingTimer);
      if (failed) {
        render();
        return;
      }
      if (view.state !== "ended") setState("ended", event.reason || "connection lost");
      else render();
    });
  }

  connect();
}

const root = document.getElementById("remote-session");
if (root) start(root);
