import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Sealing of what the Redis store writes: AES-256-GCM, authenticated, bound to where it is stored.
 *
 *   "TBS1" | key id length (1 byte) | key id | salt (16) | ciphertext | GCM tag (16)
 *
 * Each blob has its own AES key and IV, derived by HKDF-SHA256 from the named key and a random
 * salt: random 96-bit IVs under one fleet-wide key would cap it at 2^32 blobs (NIST SP 800-38D
 * 8.3), which a busy fleet reaches in weeks. The key id travels in the clear so that any listed
 * key opens (rotation); the associated data is the header plus the caller's context (the
 * destination id and the entry's clear fields), so a blob moved to another slot fails to open.
 */

export const SEAL_KEY_BYTES = 32;
const MAGIC = Buffer.from('TBS1', 'latin1');
const SALT_BYTES = 16;
const TAG_BYTES = 16;
const INFO = Buffer.from('ticketbooth seal v1', 'latin1');

export interface SealKey {
  /** A name for the key, stored with each blob (not secret). */
  id: string;
  key: Buffer;
}

/** Why a blob was not opened: a stable word for the metric label and the stderr line. */
export type OpenFailure =
  /** Sealed under a key id not listed (removed by a rotation, or another fleet's). */
  | 'unknown-key'
  /** Failed authentication: altered, moved from another slot, or another key under the same id. */
  | 'unauthentic'
  /** Not sealed at all, where sealing is on (written by an instance without `seal`). */
  | 'unsealed'
  /** Sealed, where this instance has no keys. */
  | 'sealed';

export type Opened = { ok: true; plain: Buffer } | { ok: false; why: OpenFailure; keyId?: string };

export function isSealed(blob: Buffer): boolean {
  return blob.length >= MAGIC.length && blob.subarray(0, MAGIC.length).equals(MAGIC);
}

export class Sealer {
  private readonly keys: ReadonlyMap<string, Buffer>;
  private readonly current: SealKey;

  constructor(keys: readonly SealKey[], current: string) {
    for (const k of keys) {
      if (k.key.length !== SEAL_KEY_BYTES) throw new Error(`seal key ${k.id}: ${k.key.length} bytes, not ${SEAL_KEY_BYTES}`);
      if (Buffer.byteLength(k.id) > 255 || k.id === '') throw new Error('seal key id: 1 to 255 bytes');
    }
    this.keys = new Map(keys.map((k) => [k.id, k.key]));
    const key = this.keys.get(current);
    if (!key) throw new Error(`seal: the current key ${current} is not among the keys`);
    this.current = { id: current, key };
  }

  get currentId(): string {
    return this.current.id;
  }

  seal(plain: Buffer, context: Buffer): Buffer {
    const header = headerOf(this.current.id);
    const salt = randomBytes(SALT_BYTES);
    const { key, iv } = derive(this.current.key, salt);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.concat([header, context]));
    return Buffer.concat([header, salt, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  open(blob: Buffer, context: Buffer): Opened {
    if (!isSealed(blob)) return { ok: false, why: 'unsealed' };
    const idEnd = MAGIC.length + 1 + (blob[MAGIC.length] ?? 0);
    if (blob.length < idEnd + SALT_BYTES + TAG_BYTES) return { ok: false, why: 'unauthentic' };
    const keyId = blob.toString('utf8', MAGIC.length + 1, idEnd);
    const master = this.keys.get(keyId);
    if (!master) return { ok: false, why: 'unknown-key', keyId };
    const { key, iv } = derive(master, blob.subarray(idEnd, idEnd + SALT_BYTES));
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.concat([blob.subarray(0, idEnd), context]));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    try {
      const plain = Buffer.concat([decipher.update(blob.subarray(idEnd + SALT_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
      return { ok: true, plain };
    } catch {
      return { ok: false, why: 'unauthentic', keyId };
    }
  }
}

function headerOf(id: string): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  return Buffer.concat([MAGIC, Buffer.from([idBytes.length]), idBytes]);
}

/** 32 bytes of AES key and 12 of IV, unique to this salt. */
function derive(master: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', master, salt, INFO, SEAL_KEY_BYTES + 12));
  return { key: okm.subarray(0, SEAL_KEY_BYTES), iv: okm.subarray(SEAL_KEY_BYTES) };
}

/**
 * A key as a file or a variable holds it: exactly 32 bytes raw, or their base64 (standard or URL
 * alphabet, padding and surrounding whitespace optional). Says what is wrong, never the bytes.
 */
export function parseSealKey(raw: Buffer): Buffer {
  const text = raw.toString('latin1').trim();
  // 32 bytes that are all base64 characters are text (a password, a short base64), not random bytes.
  if (raw.length === SEAL_KEY_BYTES && !/^[A-Za-z0-9+/=_-]*$/.test(text)) return Buffer.from(raw);
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === SEAL_KEY_BYTES) return key;
  }
  throw new Error(`holds ${raw.length} bytes that are neither 32 raw bytes nor their base64 (make one with: openssl rand -base64 32)`);
}
