/**
 * Multipart resume records in localStorage, so choosing the same file again after a reload
 * uploads only the parts storage does not have yet.
 *
 * Key: `rindle:multipart:<profile>:<size>:<lastModified>:<file name>`.
 * Value: JSON `{session_id, asset_id, part_size, part_count, endpoint, saved_at}`.
 * The session id is not a credential (every call is still authorized by the server); no signed
 * URL is ever stored.
 */

export const PREFIX = 'rindle:multipart:';
/** Records older than this are dropped (the server's session is long gone by then). */
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/**
 * @typedef {object} ResumeRecord
 * @property {string} session_id
 * @property {string} asset_id
 * @property {number} part_size
 * @property {number} part_count
 * @property {string} [endpoint]
 * @property {number} [saved_at]
 */

/**
 * @param {string} profile
 * @param {{name: string, size: number, lastModified?: number}} file
 * @returns {string}
 */
export function resumeKey(profile, file) {
  return `${PREFIX}${profile}:${file.size}:${file.lastModified ?? 0}:${file.name}`;
}

/**
 * A prefix of records in localStorage or sessionStorage, each stamped with `saved_at` and
 * dropped past `maxAgeMs`; shared by the multipart records here and the GCS resumable ones
 * (js/src/resumable.js). Every call looks the storage up afresh: privacy settings make the
 * mere access throw, and then nothing is remembered (the upload still works).
 * @param {'localStorage' | 'sessionStorage'} area
 * @param {string} prefix
 * @param {number} maxAgeMs
 */
export function recordStore(area, prefix, maxAgeMs) {
  /** @returns {Storage | null} */
  const storage = () => {
    try {
      return globalThis[area] || null;
    } catch {
      return null; // disabled storage (privacy settings) throws on access
    }
  };
  return {
    get available() {
      return storage() !== null;
    },
    /**
     * The record at `key` if `valid` accepts it; an invalid one is removed.
     * @param {string} key
     * @param {(rec: any) => boolean} valid
     */
    load(key, valid) {
      const store = storage();
      if (!store) return null;
      try {
        const raw = store.getItem(key);
        if (!raw) return null;
        const rec = JSON.parse(raw);
        if (!rec || !valid(rec)) {
          store.removeItem(key);
          return null;
        }
        return rec;
      } catch {
        return null;
      }
    },
    /**
     * @param {string} key
     * @param {object} record
     */
    save(key, record) {
      const store = storage();
      if (!store) return;
      try {
        prune(store, prefix, maxAgeMs);
        store.setItem(key, JSON.stringify({ ...record, saved_at: Date.now() }));
      } catch {
        // Quota or privacy mode: the upload works, it just cannot resume after a reload.
      }
    },
    /** @param {string} key */
    remove(key) {
      const store = storage();
      if (!store) return;
      try {
        store.removeItem(key);
      } catch {
        // nothing to do
      }
    },
  };
}

const multipartRecords = recordStore('localStorage', PREFIX, MAX_AGE_MS);

/**
 * @param {string} key
 * @returns {ResumeRecord | null}
 */
export function loadRecord(key) {
  return multipartRecords.load(key, (rec) => typeof rec.session_id === 'string'
    && rec.part_size > 0 && rec.part_count > 0);
}

/**
 * @param {string} key
 * @param {ResumeRecord} record
 */
export function saveRecord(key, record) {
  multipartRecords.save(key, record);
}

/** @param {string} key */
export function removeRecord(key) {
  multipartRecords.remove(key);
}

/**
 * @param {Storage} store
 * @param {string} prefix
 * @param {number} maxAgeMs
 */
function prune(store, prefix, maxAgeMs) {
  const now = Date.now();
  /** @type {string[]} */
  const stale = [];
  for (let i = 0; i < store.length; i += 1) {
    const key = store.key(i);
    if (!key || !key.startsWith(prefix)) continue;
    try {
      const rec = JSON.parse(store.getItem(key) || 'null');
      if (!rec || !(now - (rec.saved_at || 0) < maxAgeMs)) stale.push(key);
    } catch {
      stale.push(key);
    }
  }
  stale.forEach((key) => store.removeItem(key));
}
