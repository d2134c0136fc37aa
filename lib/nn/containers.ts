import { Module } from "./module";

/** Children named "0", "1", … as torch.nn.ModuleList names them. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.child(String(i), m));
  }
  override replaceChild(name: string, m: Module): void {
    super.replaceChild(name, m);
    this.items[Number(name)] = m as M;
  }
}
