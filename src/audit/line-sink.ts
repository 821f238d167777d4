/** Where audit lines go: each `write` is one whole line, its newline included. */
export interface LineSink {
  write(line: string): void;
  /** Opens the file again by name (logrotate renamed it); absent where there is no file. */
  reopen?(): Promise<void>;
  /** Resolves once every line written is where it goes. */
  close(): Promise<void>;
  /** Lines dropped because their destination did not take them in time (bounded memory). */
  readonly dropped?: number;
}

/** Standard output (`audit.file: -`), line by line; closing leaves stdout open for the rest of the process. */
export const stdoutSink: LineSink = {
  write: (line) => void process.stdout.write(line),
  close: () => new Promise<void>((resolve) => process.stdout.write('', () => resolve())),
};
