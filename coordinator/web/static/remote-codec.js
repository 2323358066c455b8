// What travels inside a remote session's sealed messages, the viewer's side
// (docs/remote-sessions.md, "Plaintext of sealed messages"); mirrors protocol/remote.py.
//
// decodeMessage reads what the agent sends (frame, cursor, screens, chat) with the same
// checks as the Python decoder and throws a RemoteCodecError for anything malformed; the
// encoders write what the viewer sends (ack, input, monitor, chat) byte for byte as
// protocol.remote.encode does.

export const Encoding = Object.freeze({ JPEG: 1, PNG: 2, COPY: 3, FILL: 4 });

export const Kind = Object.freeze({
  FRAME: 0x10,
  CURSOR: 0x11,
  SCREENS: 0x12,
  CHAT: 0x13,
  ACK: 0x20,
  INPUT: 0x21,
  MONITOR: 0x22,
});

export const MAX_PLAINTEXT = 1024 * 1024 - 64;
export const MAX_CHAT_BYTES = 2000;
export const MAX_INPUT_BYTES = 256;
export const MAX_SCREENS_BYTES = 4096;
export const MAX_DIMENSION = 16384;
export const MAX_MONITORS = 16;

const FRAME_HEAD = 12; // type u8, seq u32, monitor u8, width u16, height u16, count u16
const RECT_HEAD = 13; // x u16, y u16, w u16, h u16, encoding u8, length u32
const CURSOR_HEAD = 5; // type u8, x u16, y u16
const SHAPE_HEAD = 4; // hot_x u16, hot_y u16
const KEY_CODE = /^[A-Za-z0-9]{1,32}$/;
const ENCODINGS = new Set(Object.values(Encoding));

/** A plaintext that is not a valid message: the session must end. */
export class RemoteCodecError extends Error {
  constructor(message) {
    super(`session message: ${message}`);
    this.name = "RemoteCodecError";
  }
}

const bad = (why) => new RemoteCodecError(why);

// Strict UTF-8, as Python's bytes.decode(): invalid sequences and encoded surrogates throw.
// Chat keeps a leading BOM (bytes.decode() does); JSON drops it (json.loads does).
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const jsonDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();

function utf8(bytes, decoder = textDecoder) {
  try {
    return decoder.decode(bytes);
  } catch {
    throw bad("invalid UTF-8");
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw bad("not binary");
}

// --- decoding -------------------------------------------------------------------------

/**
 * Decode one plaintext the agent sent.
 * @param {Uint8Array} u8
 * @returns {{type: "frame", seq: number, monitor: number, width: number, height: number,
 *            rects: {x: number, y: number, w: number, h: number, encoding: number,
 *                    data: Uint8Array}[]}
 *         | {type: "cursor", x: number, y: number, hotX: number, hotY: number, png: Uint8Array}
 *         | {type: "screens", monitors: {index: number, left: number, top: number,
 *                                         width: number, height: number}[], current: number}
 *         | {type: "chat", text: string}}
 */
export function decodeMessage(u8) {
  const data = asBytes(u8);
  if (!data.length) throw bad("empty");
  if (data.length > MAX_PLAINTEXT) throw bad("too large");
  const body = data.subarray(1);
  switch (data[0]) {
    case Kind.FRAME:
      return decodeFrame(data);
    case Kind.CURSOR:
      return decodeCursor(data);
    case Kind.SCREENS:
      return decodeScreens(body);
    case Kind.CHAT:
      if (body.length > MAX_CHAT_BYTES) throw bad("chat message over 2000 bytes");
      return { type: "chat", text: utf8(body) };
    case Kind.ACK:
    case Kind.INPUT:
    case Kind.MONITOR:
      throw bad(`type 0x${data[0].toString(16)} goes from the viewer to the agent`);
    default:
      throw bad(`unknown type 0x${data[0].toString(16).padStart(2, "0")}`);
  }
}

function view(data) {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

function decodeFrame(data) {
  if (data.length < FRAME_HEAD) throw bad("truncated frame");
  const dv = view(data);
  const seq = dv.getUint32(1);
  const monitor = dv.getUint8(5);
  const width = dv.getUint16(6);
  const height = dv.getUint16(8);
  const count = dv.getUint16(10);
  if (!(width > 0 && width <= MAX_DIMENSION && height > 0 && height <= MAX_DIMENSION)) {
    throw bad("frame size out of range");
  }
  let offset = FRAME_HEAD;
  const rects = [];
  for (let i = 0; i < count; i++) {
    if (data.length - offset < RECT_HEAD) throw bad("truncated rect");
    const x = dv.getUint16(offset);
    const y = dv.getUint16(offset + 2);
    const w = dv.getUint16(offset + 4);
    const h = dv.getUint16(offset + 6);
    const encoding = dv.getUint8(offset + 8);
    const length = dv.getUint32(offset + 9);
    offset += RECT_HEAD;
    if (length > data.length - offset) throw bad("rect data past the end");
    if (w === 0 || h === 0 || x + w > width || y + h > height) throw bad("rect outside the frame");
    const payload = data.slice(offset, offset + length);
    offset += length;
    if (!ENCODINGS.has(encoding)) throw bad(`unknown encoding ${encoding}`);
    const rect = { x, y, w, h, encoding, data: payload };
    if (encoding === Encoding.COPY) {
      if (length !== 4) throw bad("copy rect of the wrong size");
      const srcX = (payload[0] << 8) | payload[1];
      const srcY = (payload[2] << 8) | payload[3];
      if (srcX + w > width || srcY + h > height) throw bad("copy source outside the frame");
      rect.srcX = srcX;
      rect.srcY = srcY;
    } else if (encoding === Encoding.FILL) {
      if (length !== 3) throw bad("fill rect of the wrong size");
      rect.rgb = [payload[0], payload[1], payload[2]];
    } else if (length === 0) {
      throw bad("empty image");
    }
    rects.push(rect);
  }
  if (offset !== data.length) throw bad("trailing bytes after the last rect");
  return { type: "frame", seq, monitor, width, height, rects };
}

function decodeCursor(data) {
  if (data.length < CURSOR_HEAD) throw bad("truncated cursor");
  const dv = view(data);
  const x = dv.getUint16(1);
  const y = dv.getUint16(3);
  const rest = data.length - CURSOR_HEAD;
  if (rest === 0) return { type: "cursor", x, y, hotX: 0, hotY: 0, png: new Uint8Array(0) };
  if (rest <= SHAPE_HEAD) throw bad("truncated cursor shape");
  return {
    type: "cursor",
    x,
    y,
    hotX: dv.getUint16(CURSOR_HEAD),
    hotY: dv.getUint16(CURSOR_HEAD + 2),
    png: data.slice(CURSOR_HEAD + SHAPE_HEAD),
  };
}

function integer(doc, name, low, high) {
  const value = Object.hasOwn(doc, name) ? doc[name] : undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(`${name} must be an integer from ${low} to ${high}`);
  }
  return value === 0 ? 0 : value; // no -0
}

// Python's json.loads makes 1.0 or 1e3 a float, which the decoder refuses where it wants
// an integer; JSON.parse makes them 1 and 1000. The reviver sees the source text (Chromium
// 114+, Firefox 135+) and wraps such numbers so that integer() refuses them too.
function keepFloats(key, value, context) {
  if (typeof value === "number" && typeof context?.source === "string") {
    if (!/^-?\d+$/.test(context.source)) return { float: value };
  }
  return value;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeScreens(body) {
  if (body.length > MAX_SCREENS_BYTES) throw bad("screen list too large");
  try {
    const doc = JSON.parse(utf8(body, jsonDecoder), keepFloats);
    if (!isObject(doc) || !Array.isArray(doc.monitors)) {
      throw new RangeError("expected {monitors: [...], current}");
    }
    const items = doc.monitors;
    if (!(items.length > 0 && items.length <= MAX_MONITORS + 1)) {
      throw new RangeError("bad number of monitors");
    }
    const monitors = items.map((item) => {
      if (!isObject(item)) throw new RangeError("a monitor must be an object");
      return {
        index: integer(item, "index", 0, MAX_MONITORS),
        left: integer(item, "left", -MAX_DIMENSION, MAX_DIMENSION),
        top: integer(item, "top", -MAX_DIMENSION, MAX_DIMENSION),
        width: integer(item, "width", 1, MAX_DIMENSION),
        height: integer(item, "height", 1, MAX_DIMENSION),
      };
    });
    return { type: "screens", monitors, current: integer(doc, "current", 0, MAX_MONITORS) };
  } catch (err) {
    const why = String(err?.message ?? err).replace(/^session message: /, "");
    throw bad(`screens: ${why}`);
  }
}

// --- encoding -------------------------------------------------------------------------

function checkInt(value, low, high, what) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < low || value > high) {
    throw new RangeError(`${what} must be an integer from ${low} to ${high}`);
  }
  return value;
}

/** `0x20 ‖ seq u32`: frame `seq` was drawn. */
export function encodeAck(seq) {
  checkInt(seq, 0, 2 ** 32 - 1, "seq");
  const out = new Uint8Array(5);
  out[0] = Kind.ACK;
  new DataView(out.buffer).setUint32(1, seq);
  return out;
}

/** `0x22 ‖ index u8`: show this monitor (0 = all of them). */
export function encodeMonitor(index) {
  checkInt(index, 0, MAX_MONITORS, "monitor index");
  return new Uint8Array([Kind.MONITOR, index]);
}

/** `0x13 ‖ UTF-8 text`, at most 2000 bytes. */
export function encodeChat(text) {
  if (typeof text !== "string") throw new TypeError("chat text must be a string");
  const bytes = textEncoder.encode(text);
  if (bytes.length > MAX_CHAT_BYTES) throw new RangeError("chat message over 2000 bytes");
  const out = new Uint8Array(1 + bytes.length);
  out[0] = Kind.CHAT;
  out.set(bytes, 1);
  return out;
}

/**
 * `0x21 ‖ JSON` of one input event, keys in the order and with the compact separators of
 * Python's `json.dumps(..., separators=(",", ":"))`:
 * `{t:"move",x,y}`, `{t:"button",b:1|2|3,down}`, `{t:"wheel",dx,dy}`, `{t:"key",code,down}`.
 * Throws a TypeError/RangeError for an event the agent would refuse.
 */
export function encodeInput(obj) {
  if (!isObject(obj)) throw new TypeError("an input event is an object");
  let doc;
  switch (obj.t) {
    case "move":
      doc = {
        t: "move",
        x: checkInt(obj.x, 0, MAX_DIMENSION * 4, "x"),
        y: checkInt(obj.y, 0, MAX_DIMENSION * 4, "y"),
      };
      break;
    case "button":
      doc = { t: "button", b: checkInt(obj.b, 1, 3, "b"), down: checkBool(obj.down) };
      break;
    case "wheel":
      doc = {
        t: "wheel",
        dx: checkInt(obj.dx, -100, 100, "dx"),
        dy: checkInt(obj.dy, -100, 100, "dy"),
      };
      break;
    case "key":
      if (typeof obj.code !== "string" || !KEY_CODE.test(obj.code)) {
        throw new RangeError("code must be a KeyboardEvent.code");
      }
      doc = { t: "key", code: obj.code, down: checkBool(obj.down) };
      break;
    default:
      throw new RangeError(`unknown input event ${JSON.stringify(obj.t)}`);
  }
  // Every value is ASCII, so JSON.stringify's output is what Python's ensure_ascii gives.
  const bytes = textEncoder.encode(JSON.stringify(doc));
  const out = new Uint8Array(1 + bytes.length);
  out[0] = Kind.INPUT;
  out.set(bytes, 1);
  return out;
}

function checkBool(value) {
  if (typeof value !== "boolean") throw new TypeError("down must be true or false");
  return value;
}
