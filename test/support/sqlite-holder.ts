import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { DatabaseHolder } from "../../lib/xmtp/state/durable-database.js";

/**
 * A real SQLite database (WAL mode, like libxmtp's) standing in for the XMTP database:
 * a counter row and an optional blob, opened lazily and kept open across calls like a client would.
 */
export function createSqliteHolder(dbPath: string): DatabaseHolder & {
  increment(padBytes?: number): { before: number; after: number };
  read(): number;
} {
  let db: DatabaseSync | undefined;
  const open = () => {
    if (!db) {
      mkdirSync(dirname(dbPath), { recursive: true });
      db = new DatabaseSync(dbPath);
      db.exec("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL); CREATE TABLE IF NOT EXISTS pad (id INTEGER PRIMARY KEY, data BLOB);");
      db.exec("INSERT OR IGNORE INTO counter (id, value) VALUES (1, 0)");
    }
    return db;
  };
  return {
    increment(padBytes = 0) {
      const d = open();
      const before = Number((d.prepare("SELECT value FROM counter WHERE id = 1").get() as { value: number }).value);
      d.prepare("UPDATE counter SET value = ? WHERE id = 1").run(before + 1);
      if (padBytes > 0) d.prepare("INSERT INTO pad (data) VALUES (?)").run(new Uint8Array(Buffer.alloc(padBytes, before % 251)));
      return { before, after: before + 1 };
    },
    read() {
      return Number((open().prepare("SELECT value FROM counter WHERE id = 1").get() as { value: number }).value);
    },
    async release() {
      db?.close();
      db = undefined;
    },
    async discard() {
      db?.close();
      db = undefined;
    },
  };
}
