// How a process started by `pushline start` tells it which ports it is listening on.
//
// The stack asks a child for "any free port" by handing it port 0, and the child binds it itself.
// Guessing a free port in the supervisor and handing the number on would leave a gap between the
// guess and the child's bind, and any other process on the machine (an outgoing connection takes
// its port from the same ephemeral range) could take the port in that gap: the comet then died
// with EADDRINUSE and took the stack with it. So the port is only known once the child has bound
// it, and the child reports it over the IPC channel it already watches the supervisor through
// (src/cli/lifecycle.ts).
import type { ChildProcess } from 'node:child_process';

/** Port names a child reports: a comet `ws` and `grpc`, logic `http`, job `metrics`. */
export type ListeningPorts = Record<string, number>;

interface ListeningReport {
  type: 'pushline:listening';
  ports: ListeningPorts;
}

function isListeningReport(message: unknown): message is ListeningReport {
  const m = message as Partial<ListeningReport> | null;
  return typeof m === 'object' && m !== null && m.type === 'pushline:listening' && typeof m.ports === 'object' && m.ports !== null;
}

/** In a child: report the bound ports to the supervisor; a no-op when nobody supervises. */
export function reportListening(ports: ListeningPorts): void {
  // The callback takes a send error (the supervisor just went away) that would otherwise be an
  // 'error' event on process; lifecycle.ts stops this process when the channel closes.
  if (process.send && process.connected) process.send({ type: 'pushline:listening', ports } satisfies ListeningReport, undefined, {}, () => {});
}

/** In the supervisor: the ports `child` reports, or null when it exits (or is gone) before it does. */
export function awaitListening(child: ChildProcess): Promise<ListeningPorts | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(null);
    const onMessage = (message: unknown) => {
      if (!isListeningReport(message)) return;
      done(message.ports);
    };
    const onExit = () => done(null);
    const done = (ports: ListeningPorts | null) => {
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(ports);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
