import pino from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs on stderr (as etcd's zap logger writes them). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  const pinoLevel = level === 'panic' ? 'fatal' : level;
  return pino({ level: pinoLevel, base: { ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
