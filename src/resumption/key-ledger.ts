/**
 * The trust keys one listener has dialled under, so a reload that changes or removes the listener
 * can drop the sessions cached under keys nothing will ask for again. Bounded: past `max` keys a
 * ledger stops recording (those slots then age out of the store as any unused slot does).
 */
export class KeyLedger {
  private readonly ids = new Set<string>();

  constructor(private readonly max = 10_000) {}

  record(id: string): void {
    if (this.ids.size < this.max) this.ids.add(id);
  }

  get keys(): ReadonlySet<string> {
    return this.ids;
  }
}
