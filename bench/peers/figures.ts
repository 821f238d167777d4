/** Figures with the goals: each a ratio ticketbooth/stunnel (or an absolute cap), `met` as measured. */
import type { Figure } from '../section.js';

export type Goal = { atLeast: number } | { atMost: number };

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

export function goalFigure(value: number, unit: string, goal: Goal): Figure {
  const met = Number.isFinite(value) && ('atLeast' in goal ? value >= goal.atLeast : value <= goal.atMost);
  const x = unit === 'ratio' ? 'x' : ` ${unit}`;
  return { value: round(value), unit, goal: 'atLeast' in goal ? `>= ${goal.atLeast}${x}` : `<= ${goal.atMost}${x}`, met };
}

export function plainFigure(value: number, unit: string): Figure {
  return { value: round(value), unit };
}

/** A ratio cell for the table, with a mark when its goal is not met. */
export function ratioCell(value: number, goal?: Goal): string {
  if (!Number.isFinite(value)) return '-';
  const miss = goal && !goalFigure(value, 'ratio', goal).met;
  return `${value.toFixed(2)}x${miss ? ' !' : ''}`;
}

export function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}
