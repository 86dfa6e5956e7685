// Listening on a unix socket as etcd's transport.NewUnixListener does: a file
// left at the path (a socket from an earlier run) is removed first. Node
// unlinks the socket itself when the server closes.

import { rmSync } from 'node:fs';
import type { Server } from 'node:net';

export function listenUnix(server: Server, path: string, onListening: () => void): void {
  rmSync(path, { force: true });
  server.listen(path, onListening);
}
