import { waitAndRollback } from './apply.ts';

/**
 * The timed rollback's private entry, started by apply as a detached process before the load:
 * `node rollback-worker.js STATE_DIR ID`. It waits for the deadline of apply ID and restores the
 * snapshot unless the apply was confirmed or replaced first (see waitAndRollback). Not a user
 * interface: apply is its only caller (see ROLLBACK_WORKER in apply.ts).
 */
const [stateDir, id] = process.argv.slice(2);
if (stateDir === undefined || id === undefined) {
  process.stderr.write('rollback worker: usage: rollback-worker.js STATE_DIR ID\n');
  process.exitCode = 2;
} else {
  waitAndRollback(stateDir, id).catch((error: unknown) => {
    // stdio is ignored when detached; the failed rollback is in the state dir's history already
    process.stderr.write(`rollback worker: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
