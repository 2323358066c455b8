// End-to-end encryption of remote sessions, the viewer's side (docs/remote-sessions.md,
// "Binary messages: handshake, then sealed"). The agent's side is protocol/e2e.py.
//
// WebCrypto only: X25519 for the key agreement, Ed25519 to check that the agent's hello
// is signed by the device key the coordinator gave us, HKDF-SHA-256 for the keys and the
// 6-digit verification code, AES-256-GCM for sealed messages. There is no unencrypted
// mode: anything that does not authenticate throws an E2EError and the channel refuses
// every later message.
//
//   const hs = await startViewerHandshake(sessionId, deviceKeyRaw);
//   ws.send(hs.hello);                        // 0x01 ‖ viewer_eph
//   const channel = await hs.finish(agentHello); // 0x02 ‖ agent_eph ‖ signature
//   channel.code;                             // "123456", shown to the technician
//   ws.send(await channel.seal(plaintext));   // 0x03 ‖ counter ‖ ciphertext ‖ tag
//   const plaintext = await channel.open(message);

export const VIEWER_HELLO = 0x01;
export const AGENT_HELLO = 0x02;
export const SEALED = 0x03;

const KEY_SIZE = 32;
const SIGNATURE_SIZE = 64;
const TAG_SIZE = 16;
const HEADER_SIZE = 5; // type byte, u32 counter
const AGENT_HELLO_SIZE = 1 + KEY_SIZE + SIGNATURE_SIZE;
const COUNTER_LIMIT = 2 ** 32;
// protocol.remote.MAX_PLAINTEXT, plus the envelope.
const MAX_PLAINTEXT = 1024 * 1024 - 64;
const MAX_SEALED = HEADER_SIZE + TAG_SIZE + MAX_PLAINTEXT;

const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const TRANSCRIPT_LABEL = ascii("backdesk-e2e-v1\x00");
const INFO_A2V = ascii("backdesk-e2e-v1 agent-to-viewer");
const INFO_V2A = ascii("backdesk-e2e-v1 viewer-to-agent");
const INFO_CODE = ascii("backdesk-e2e-v1 code");

const FORGED = "replayed, reordered or forged frame";

/** Whatever the handshake or a sealed message got wrong; the session must end. */
export class E2EError extends Error {
  constructor(message) {
    super(message);
    this.name = "E2EError";
  }
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function asBytes(data, what) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new E2EError(`${what} is not binary`);
}

function hex(byte) {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}

function nonce(counter) {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setUint32(8, counter, false);
  return iv;
}

/** SHA-256 of everything both ends must agree on; what the agent signs. */
export async function transcriptHash(sessionId, deviceKey, viewerEph, agentEph) {
  const sid = sessionIdBytes(sessionId);
  const data = concat(TRANSCRIPT_LABEL, sid, new Uint8Array([0]), deviceKey, viewerEph, agentEph);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function sessionIdBytes(sessionId) {
  // Non-empty ASCII, as protocol/e2e.py requires.
  if (typeof sessionId !== "string" || !/^[\x00-\x7f]+$/.test(sessionId)) {
    throw new E2EError("a session id is non-empty ASCII");
  }
  return ascii(sessionId);
}

async function hkdf(shared, salt, info, bits) {
  const key = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bits),
  );
}

async function aesKey(raw, usage) {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [usage]);
}

/**
 * Start the viewer's half of the handshake.
 * @param {string} sessionId the session's id (ASCII)
 * @param {Uint8Array} deviceKeyRaw the device's raw Ed25519 public key (32 bytes)
 * @returns {Promise<{hello: Uint8Array, finish: (agentHello: Uint8Array) => Promise<Channel>}>}
 */
export async function startViewerHandshake(sessionId, deviceKeyRaw) {
  sessionIdBytes(sessionId);
  const deviceKey = new Uint8Array(asBytes(deviceKeyRaw, "the device key"));
  if (deviceKey.length !== KEY_SIZE) throw new E2EError("the device key is 32 bytes");
  let verifyKey;
  try {
    verifyKey = await crypto.subtle.importKey("raw", deviceKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch (err) {
    throw new E2EError(`not a valid Ed25519 device key (${err?.message ?? err})`);
  }
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const viewerEph = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  let privateKey = pair.privateKey;
  const hello = concat(new Uint8Array([VIEWER_HELLO]), viewerEph);

  async function finish(agentHello) {
    // Works once: the ephemeral private key is forgotten whatever the outcome.
    const own = privateKey;
    if (!own) throw new E2EError("the handshake is already finished");
    privateKey = null;
    const data = asBytes(agentHello, "the agent hello");
    if (!data.length || data[0] !== AGENT_HELLO) {
      const got = data.length ? hex(data[0]) : "an empty message";
      throw new E2EError(`expected the agent hello (0x02), got ${got}`);
    }
    if (data.length !== AGENT_HELLO_SIZE) {
      throw new E2EError(`agent hello of ${data.length} bytes, expected ${AGENT_HELLO_SIZE}`);
    }
    const agentEph = data.slice(1, 1 + KEY_SIZE);
    const signature = data.slice(1 + KEY_SIZE);
    const transcript = await transcriptHash(sessionId, deviceKey, viewerEph, agentEph);
    // The signature first: nothing is derived from an unauthenticated key.
    let valid = false;
    try {
      valid = await crypto.subtle.verify({ name: "Ed25519" }, verifyKey, signature, transcript);
    } catch {
      valid = false;
    }
    if (!valid) throw new E2EError("the agent hello is not signed by the device's key");
    let shared;
    try {
      const peer = await crypto.subtle.importKey("raw", agentEph, { name: "X25519" }, false, []);
      shared = await crypto.subtle.deriveBits({ name: "X25519", public: peer }, own, 256);
    } catch {
      // WebCrypto refuses a small-order key (the shared secret would be all zeros).
      throw new E2EError("key agreement failed (small-order ephemeral key)");
    }
    shared = new Uint8Array(shared);
    if (shared.every((b) => b === 0)) {
      throw new E2EError("key agreement failed (small-order ephemeral key)");
    }
    const [a2v, v2a, codeBytes] = await Promise.all([
      hkdf(shared, transcript, INFO_A2V, 256),
      hkdf(shared, transcript, INFO_V2A, 256),
      hkdf(shared, transcript, INFO_CODE, 32),
    ]);
    const number = new DataView(codeBytes.buffer).getUint32(0, false) % 1_000_000;
    const code = String(number).padStart(6, "0");
    // The viewer seals with k_v2a and opens with k_a2v.
    const [sendKey, receiveKey] = await Promise.all([
      aesKey(v2a, "encrypt"),
      aesKey(a2v, "decrypt"),
    ]);
    return new Channel(code, sendKey, receiveKey);
  }

  return { hello, finish };
}

/**
 * A viewer's sealing state once the handshake is done. Each direction counts its
 * messages from 0; `open` accepts only the next counter, and after one refused message
 * every later one is refused too.
 *
 * Counters are reserved synchronously, when `seal` or `open` is called, and the
 * promises settle in call order: call them in the order the messages go out or came in.
 */
class Channel {
  #sendKey;
  #receiveKey;
  #sendCounter = 0;
  #receiveCounter = 0;
  #failure = null;
  #sealing = Promise.resolve();
  #opening = Promise.resolve();

  constructor(code, sendKey, receiveKey) {
    this.code = code;
    this.#sendKey = sendKey;
    this.#receiveKey = receiveKey;
    Object.freeze(this);
  }

  /** Why the channel refused a message (then it refuses everything), or null. */
  get failed() {
    return this.#failure;
  }

  get sent() {
    return this.#sendCounter;
  }

  get received() {
    return this.#receiveCounter;
  }

  /**
   * `0x03 ‖ counter ‖ AES-GCM(plaintext)` with the next counter of this direction.
   * @param {Uint8Array} plaintext
   * @returns {Promise<Uint8Array>}
   */
  seal(plaintext) {
    let data;
    try {
      data = asBytes(plaintext, "a plaintext");
      if (data.length > MAX_PLAINTEXT) {
        throw new E2EError(`plaintext of ${data.length} bytes is over ${MAX_PLAINTEXT}`);
      }
      if (this.#sendCounter >= COUNTER_LIMIT) {
        throw new E2EError("message counter exhausted: end the session");
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const counter = this.#sendCounter;
    this.#sendCounter = counter + 1;
    data = data.slice(); // the caller may reuse its buffer before we encrypt
    const key = this.#sendKey;
    const result = this.#sealing.then(async () => {
      const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce(counter) }, key, data);
      const out = new Uint8Array(HEADER_SIZE + ct.byteLength);
      out[0] = SEALED;
      new DataView(out.buffer).setUint32(1, counter, false);
      out.set(new Uint8Array(ct), HEADER_SIZE);
      return out;
    });
    this.#sealing = result.catch(() => {});
    return result;
  }

  /**
   * The plaintext of the next sealed message; throws an E2EError for anything else.
   * @param {Uint8Array} message
   * @returns {Promise<Uint8Array>}
   */
  open(message) {
    // Everything but the decryption happens now, before any other open can run.
    if (this.#failure) {
      return Promise.reject(new E2EError(`channel already failed (${this.#failure.message})`));
    }
    let data;
    let counter;
    try {
      data = asBytes(message, "a sealed message");
      counter = this.#check(data);
    } catch (err) {
      this.#fail(err instanceof E2EError ? err : new E2EError(String(err?.message ?? err)));
      return Promise.reject(this.#failure);
    }
    this.#receiveCounter = counter + 1;
    const body = data.slice(HEADER_SIZE);
    const key = this.#receiveKey;
    const result = this.#opening.then(async () => {
      // An earlier message that did not authenticate fails this one too.
      if (this.#failure) throw new E2EError(`channel already failed (${this.#failure.message})`);
      try {
        const iv = nonce(counter);
        return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, body));
      } catch {
        this.#fail(new E2EError(`${FORGED} (counter ${counter} does not authenticate)`));
        throw this.#failure;
      }
    });
    this.#opening = result.catch(() => {});
    return result;
  }

  #check(data) {
    if (!data.length) throw new E2EError("empty binary message");
    if (data[0] !== SEALED) {
      throw new E2EError(`expected a sealed message (0x03), got ${hex(data[0])}`);
    }
    if (data.length < HEADER_SIZE + TAG_SIZE) {
      throw new E2EError(`truncated sealed message (${data.length} bytes)`);
    }
    if (data.length > MAX_SEALED) {
      throw new E2EError(`sealed message too large (${data.length} bytes)`);
    }
    const counter = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1, false);
    if (counter !== this.#receiveCounter) {
      throw new E2EError(`${FORGED} (counter ${counter}, expected ${this.#receiveCounter})`);
    }
    return counter;
  }

  #fail(error) {
    if (!this.#failure) this.#failure = error;
  }
}
