import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const RELAYED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs a TypeScript entry point in a process group of its own (`detached`: a new session, in fact), relays stop
 * signals to it, and resolves with its exit code.
 *
 * Why: a terminal's Ctrl-C signals every process of the foreground group at once. Left there, the parts of the
 * platform (the Temporal dev server included, which startDevTemporal spawns in its parent's group) would all stop
 * together in no order, and the worker would lose its server while finishing its tasks. In a group of its own, only
 * this front process hears the terminal, and the program behind it stops the parts one after another.
 *
 * The child gets an IPC channel: when this process dies without relaying anything (SIGKILL), the channel closes and
 * the child sees 'disconnect', so nothing keeps running unattended.
 */
export function runInOwnProcessGroup(entry: string, args: string[]): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // Stays installed after the child ended: a late duplicate of the signal (npm relays it too) must not end this
  // process with 130 while it reports the child's exit code.
  const relay = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of RELAYED) process.on(signal, relay);

  return new Promise((resolve) => {
    child.once('error', (err) => {
      console.error(`[start] could not start ${entry}: ${err.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      void endLeftovers(child.pid).then(() => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  });
}

/**
 * Processes still in the group a second after its leader ended were orphaned by a crash of it: end them too. (The
 * second lets helpers that exit with their parent, such as tsx's esbuild service, go by themselves.)
 */
async function endLeftovers(groupId: number | undefined): Promise<void> {
  if (!groupId) return;
  for (let waited = 0; waited < 1000 && groupHasMembers(groupId); waited += 50) await new Promise((r) => setTimeout(r, 50));
  if (!groupHasMembers(groupId)) return;
  process.kill(-groupId, 'SIGTERM');
  console.error(`[start] ended processes that the platform left behind when it ended (process group ${groupId})`);
}

function groupHasMembers(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch {
    return false; // ESRCH: the group is empty, as it is after every orderly stop
  }
}
