import pino from 'pino';

export type Logger = pino.Logger;

/** One of etcd's --log-outputs: "default" and "stderr" are stderr, "stdout" is stdout, anything else a file (appended). */
function destination(output: string): pino.DestinationStream {
  if (output === 'default' || output === 'stderr') return pino.destination(2);
  if (output === 'stdout') return pino.destination(1);
  return pino.destination({ dest: output, append: true, mkdir: true });
}

/** Structured JSON logs (as etcd's zap logger writes them), on stderr unless outputs say otherwise. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, outputs: string[] = ['default']): Logger {
  const pinoLevel = level === 'panic' ? 'fatal' : level;
  const unique = [...new Set(outputs.map((o) => (o === 'default' ? 'stderr' : o)))];
  const stream = unique.length === 1
    ? destination(unique[0]!)
    : pino.multistream(unique.map((o) => ({ stream: destination(o), level: pinoLevel as pino.Level })));
  return pino({ level: pinoLevel, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
