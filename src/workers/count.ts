import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';

/** `workers: auto` is one per core this process may use. */
export function workerCount(workers: Config['workers']): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/** Set in a worker's environment by its primary: `serve` then runs as that worker. */
export const WORKER_ENV = 'TICKETBOOTH_WORKER';
