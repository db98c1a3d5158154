import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

/**
 * Starts the production worker entry point (workers/main.ts) as its own process with the given settings, and
 * resolves once it polls. Used where a separate worker matters: crash tests, benchmarks. `under` is a command the
 * worker runs under (`nsenter --net=<namespace>`: a worker in a network namespace of its own); it must exec Node in
 * place, so the child's pid is the worker's.
 */
export async function spawnWorkerProcess(settings: Record<string, string>, under: string[] = []): Promise<ChildProcess> {
  const [command, ...args] = [...under, process.execPath, '--import', 'tsx', join(root, 'workers', 'main.ts')];
  const child = spawn(command, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      SCHEDULES: 'false',
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      LOG_PRETTY: 'false',
      ...settings,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 180_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker polling')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  // Keep draining its output so a chatty worker never blocks on a full pipe.
  child.stdout!.removeAllListeners('data').resume();
  child.stderr!.removeAllListeners('data').resume();
  return child;
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}
