// @nxtedition/rocksdb ships no declarations; these cover what etsd uses.
declare module '@nxtedition/rocksdb' {
  export interface QueryOptions {
    gt?: Uint8Array; gte?: Uint8Array; lt?: Uint8Array; lte?: Uint8Array;
    limit?: number; reverse?: boolean; keys?: boolean; values?: boolean;
    keyEncoding?: 'buffer'; valueEncoding?: 'buffer'; fillCache?: boolean;
  }
  export interface QueryResult { rows: Buffer[]; finished: boolean }
  export interface ChainedBatch {
    put(key: Uint8Array, value: Uint8Array): this;
    del(key: Uint8Array): this;
    readonly length: number;
    write(options?: { sync?: boolean }): Promise<void>;
    close(): Promise<void>;
    /** The binding's unchecked calls (storage/write-batch.ts reuses one batch with them). */
    _put(key: Uint8Array, value: Uint8Array): void;
    _del(key: Uint8Array): void;
    /** Writes the batch and leaves it open (its records stay until _clear). */
    _writeSync(options: { sync: boolean }): void;
    _clear(): void;
    _closeSync(): void;
  }
  /** An iterator holds an implicit RocksDB snapshot: it sees the database as of its creation. */
  export interface Iterator {
    /** Up to `size` entries as flat rows [key, value, key, value, ...] (values undefined with values: false). */
    _nextvSync(size: number, options?: object): { rows: (Buffer | undefined)[]; finished: boolean };
    /** Moves to the first key >= target (target must not be empty). */
    _seekSync(target: Uint8Array): void;
    /** Releases the iterator (and its snapshot) now; close() may follow and does nothing then. */
    _closeSync(): void;
    close(): Promise<void>;
  }
  export interface OpenOptions {
    keyEncoding?: 'buffer'; valueEncoding?: 'buffer';
    createIfMissing?: boolean; cacheSize?: number; compression?: boolean;
    walCompression?: boolean; parallelism?: number; infoLogLevel?: string;
    optimize?: 'point-lookup' | 'range-lookup'; filterPolicy?: string;
  }
  export class RocksLevel {
    constructor(locationOrHandle: string | bigint, options?: OpenOptions);
    open(options?: OpenOptions): Promise<void>;
    close(): Promise<void>;
    readonly status: string;
    readonly handle: bigint;
    batch(): ChainedBatch;
    querySync(options: QueryOptions): QueryResult;
    iterator(options?: QueryOptions): Iterator;
    _getManySync(keys: Uint8Array[], options?: { valueEncoding?: 'buffer'; fillCache?: boolean }): (Buffer | undefined)[];
    getProperty(property: string): string;
  }
}
