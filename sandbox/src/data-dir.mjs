// What the sandbox keeps in its --data directory, so that a restart looks like a real EHR's:
//
//   fhir-journal.jsonl   every committed FHIR write (see Journal below)
//   credentials.json     generated client secrets and keys, the token signing key, cookie keys
//   lock                 the pid of the sandbox using the directory
//
// Without --data nothing is written: the journal is absent and credentials live in memory.
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

export const JOURNAL_FILE = 'fhir-journal.jsonl';
export const CREDENTIALS_FILE = 'credentials.json';
export const LOCK_FILE = 'lock';

/** Write a file whole or not at all, durably: temp file, fsync, rename, fsync the directory. */
export function writeFileDurably(path, text) {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirectory(dirname(path));
}

function fsyncDirectory(dir) {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The directory itself

/**
 * Create the directory if needed and take its lock: one sandbox per directory. A lock left by
 * a process that no longer runs (killed with SIGKILL) is taken over. Returns `release()`.
 */
export function lockDataDir(dir) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const holder = existsSync(path) ? Number(readFileSync(path, 'utf8').trim()) : undefined;
  if (holder && holder !== process.pid && isAlive(holder)) {
    throw new Error(`${dir} is in use by another sandbox (pid ${holder})`);
  }
  writeFileSync(path, `${process.pid}\n`);
  return () => {
    try {
      if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// The journal of committed writes

/**
 * An append-only log of committed FHIR writes, one JSON line per commit (a request outside a
 * transaction, or a whole transaction):
 *
 *   {"writes":[{"op":"put","resource":{...as stored, with meta.versionId and lastUpdated}},
 *              {"op":"delete","resourceType":"Patient","id":"x","at":"2026-...Z"},
 *              {"op":"expunge","resourceType":"Patient","ids":["x"]}]}
 *
 * A commit is one write(2) of one line followed by fsync(2), before the response is sent. A
 * line cut short by a crash was never answered, so on open it is dropped (and cut off the
 * file): a transaction is kept whole or not at all. Any other unreadable line is an error.
 */
export class Journal {
  /** Open (or prepare to create) the journal at `path`; `commits` holds what it already has. */
  constructor(path) {
    this.path = path;
    this.commits = [];
    this.fd = undefined;
    if (existsSync(path)) {
      this.commits = this.load();
      this.fd = openSync(path, 'a');
    }
  }

  load() {
    const text = readFileSync(this.path, 'utf8');
    const lines = text.split('\n');
    const tail = lines.pop(); // '' when the file ends with a newline, else a torn last line
    const commits = [];
    let good = 0; // bytes of whole, readable lines
    for (const [i, line] of lines.entries()) {
      let commit;
      try {
        commit = JSON.parse(line);
      } catch {
        commit = undefined;
      }
      if (!Array.isArray(commit?.writes)) {
        if (i === lines.length - 1 && !tail) {
          break; // the last line is damaged: treat it as torn too
        }
        throw new Error(`${this.path}: line ${i + 1} is not a journal record; refusing to start`);
      }
      commits.push(commit);
      good += Buffer.byteLength(line) + 1;
    }
    if (good < Buffer.byteLength(text)) {
      const fd = openSync(this.path, 'r+');
      try {
        ftruncateSync(fd, good);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      console.error(`sandbox: dropped an incomplete last record from ${this.path}`);
    }
    return commits;
  }

  /**
   * Append one commit (its writes already serialised as JSON) and fsync it. The first commit
   * creates the file, atomically.
   */
  append(writes) {
    const line = `{"writes":[${writes.join(',')}]}\n`;
    if (this.fd === undefined) {
      writeFileDurably(this.path, line);
      this.fd = openSync(this.path, 'a');
      return;
    }
    writeSync(this.fd, line);
    fsyncSync(this.fd);
  }

  close() {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Generated credentials

/**
 * Generated secrets and keys by name: made once, then read back from credentials.json on every
 * later start (when there is a directory), so the clients' credentials in the --info file and
 * tokens signed before a restart stay valid, as they would with a real EHR.
 */
export class Credentials {
  constructor(dir) {
    this.path = dir ? join(dir, CREDENTIALS_FILE) : undefined;
    this.values = this.path && existsSync(this.path) ? JSON.parse(readFileSync(this.path, 'utf8')) : {};
    this.changed = false;
  }

  /** The value saved under `name`, or `await generate()` (saved by the next save()). */
  async remember(name, generate) {
    if (!Object.hasOwn(this.values, name)) {
      this.values[name] = await generate();
      this.changed = true;
    }
    return structuredClone(this.values[name]);
  }

  /** Write new values to credentials.json (mode 0600); nothing without a directory. */
  save() {
    if (this.path && this.changed) {
      writeFileDurably(this.path, `${JSON.stringify(this.values, null, 2)}\n`);
      this.changed = false;
    }
  }
}
