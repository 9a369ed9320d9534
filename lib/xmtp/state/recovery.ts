import * as v from "valibot";
import { CorruptStateError } from "../../shared/errors.js";
import { parseStored, storeCall, type Redis } from "../../shared/redis.js";
import { acquireLease } from "./lease.js";
import type { RecoveryMarker, SnapshotStore } from "./snapshot-store.js";

/** Recoveries closer together than this need `force`: each one spends identity updates (256 per inbox, ever). */
export const RECOVERY_COOLDOWN_MS = 24 * 60 * 60 * 1000;

const HistoryEntrySchema = v.object({ at: v.string() });

/** What a recovery did, or why it did nothing. */
export type RecoveryReport =
  | { readonly status: "nothing-to-do" }
  | { readonly status: "refused"; readonly reason: string }
  | {
      readonly status: "recovered";
      readonly marker: RecoveryMarker | null;
      readonly retiredInstallationId: string | null;
      readonly retiredVersion: number | null;
      /** Whether the old installation was revoked on the network (false: revoke it later, see `revokeError`). */
      readonly revoked: boolean;
      readonly revokeError?: string;
    };

/** What recovery needs: the store, and a way to revoke an installation without a client. */
export interface RecoveryDeps {
  readonly redis: Redis;
  readonly store: SnapshotStore;
  /** Revokes installations of the backend inbox (production: `Client.revokeInstallations(signer, inboxId, ids, env)`). */
  readonly revoke: (inboxId: string, installationIds: readonly string[]) => Promise<void>;
  readonly now?: () => Date;
}

/**
 * Recovers an installation marked `needs-recovery`: under the lease, retires the stored database (the
 * manifest is kept under a `retired` key for inspection, its chunks are deleted), moves the fence on so
 * no earlier holder can commit, clears the marker, and revokes the broken installation. The next session
 * then starts a new installation. Never runs by itself and refuses to run twice within
 * {@link RECOVERY_COOLDOWN_MS} without `force`, so it cannot loop through the inbox's identity updates.
 * @throws {import("./lease.js").LeaseTimeoutError | import("../../shared/errors.js").StoreUnavailableError}
 */
export async function recoverInstallation(deps: RecoveryDeps, options: { force?: boolean } = {}): Promise<RecoveryReport> {
  const now = deps.now ?? (() => new Date());
  const { keys } = deps.store;
  const lease = await acquireLease(deps.redis, { leaseKey: keys.lease, fenceKey: keys.fence, ttlMs: 30_000, waitMs: 30_000 });
  try {
    const marker = await deps.store.readRecoveryMarker();
    if (!marker && !options.force) return { status: "nothing-to-do" };
    const last: unknown = await storeCall("read recovery history", () => deps.redis.lindex(keys.history, 0));
    if (last !== null && last !== undefined && !options.force) {
      // A last entry that cannot be read counts as recent: recovering twice costs more than asking for --force.
      const at = Date.parse(parseStored(HistoryEntrySchema, last)?.at ?? "") || now().getTime();
      if (now().getTime() - at < RECOVERY_COOLDOWN_MS) {
        return {
          status: "refused",
          reason: `A recovery already ran at ${new Date(at).toISOString()}; another one spends more of the inbox's identity updates. Re-run with --force if you are sure.`,
        };
      }
    }
    let installation: Awaited<ReturnType<SnapshotStore["readInstallation"]>>;
    try {
      installation = await deps.store.readInstallation();
    } catch (error) {
      if (!(error instanceof CorruptStateError)) throw error;
      // Without the record there is nothing to revoke: the broken installation would stay on the inbox.
      if (!options.force) return { status: "refused", reason: "The recorded installation cannot be read, so it could not be revoked. Re-run with --force to reset anyway, then revoke it from another client." };
      installation = null;
    }
    const manifest = await deps.store.readManifest();
    const stamp = now().toISOString();
    const tx = deps.redis.multi();
    if (manifest) {
      tx.set(`${keys.manifest}:retired:${stamp}`, JSON.stringify({ manifest, installation, marker }));
      for (const hash of new Set(manifest.files.flatMap((f) => f.chunks))) tx.del(keys.chunk(hash));
    }
    tx.del(keys.manifest);
    tx.del(keys.recovery);
    tx.del(keys.installation);
    tx.incr(keys.fence);
    tx.lpush(keys.history, JSON.stringify({ at: stamp, installationId: installation?.installationId ?? null, reason: marker?.reason ?? "forced" }));
    await storeCall("retire database", () => tx.exec());

    let revoked = false;
    let revokeError: string | undefined;
    if (installation) {
      try {
        await deps.revoke(installation.inboxId, [installation.installationId]);
        revoked = true;
      } catch (error) {
        revokeError = error instanceof Error ? error.message : String(error);
      }
    }
    return {
      status: "recovered",
      marker,
      retiredInstallationId: installation?.installationId ?? null,
      retiredVersion: manifest?.version ?? null,
      revoked,
      ...(revokeError ? { revokeError } : {}),
    };
  } finally {
    await lease.release();
  }
}
