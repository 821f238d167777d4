/** An error text fit for one line of a reply or a log: line breaks folded, at most `max` characters. */
export function oneLine(s: string, max = 300): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, max);
}
