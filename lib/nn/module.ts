// Modules own parameters under Hugging Face's names, so a state dict maps one-to-one onto the
// checkpoint files Python writes and reads.
import { TunekitError } from "../errors";
import { Tensor, numel } from "../tensor/tensor";
import { Storage, Device, DType, allocate, parseDevice, release } from "../tensor/storage";
import { Generator } from "../tensor/ops";
import { packByDtype, Arena } from "./arena";

export class Parameter extends Tensor {
  /** Zeroed storage of its own (outside the activation pool), or the given storage. */
  constructor(shape: number[], storage?: Storage) {
    super(shape, storage ?? allocate(numel(shape)), true);
  }
  /** Frozen parameters get no gradient buffer and no optimizer state. */
  get frozen(): boolean {
    return !this.requiresGrad;
  }
}

export abstract class Module {
  training = false;
  protected readonly children = new Map<string, Module>();
  protected readonly params = new Map<string, Parameter | null>();
  /** Set when a parent registers this module (child / replaceChild): train() and eval() reach it. */
  protected registered = false;
  /** Modules held in a field without being owned (LoRA's wrapped Linear): exempt from the reach check. */
  private readonly borrowed = new Set<Module>();

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    m.registered = true;
    return m;
  }

  /** Marks a module this one keeps in a field but does not own, so train() does not expect to reach it. */
  protected borrow<M extends Module>(m: M): M {
    this.borrowed.add(m);
    return m;
  }

  protected param(name: string, shape: number[]): Parameter {
    const p = new Parameter(shape);
    this.params.set(name, p);
    return p;
  }

  /** Replaces a child (LoRA wraps a Linear in place). */
  replaceChild(name: string, m: Module): void {
    const old = this.children.get(name);
    if (!old) throw new TunekitError(`replaceChild: no child '${name}'`);
    old.registered = false;
    this.children.set(name, m);
    m.registered = true;
    (this as unknown as Record<string, unknown>)[name] = m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  *namedModules(prefix = ""): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [n, c] of this.children) yield* c.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  *namedParameters(prefix = ""): IterableIterator<[string, Parameter]> {
    for (const [n, p] of this.params) if (p) yield [prefix ? `${prefix}.${n}` : n, p];
    for (const [n, c] of this.children) yield* c.namedParameters(prefix ? `${prefix}.${n}` : n);
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  /**
   * Sets `training` on every registered module, as torch's train(): dropout acts only in training.
   * It then checks that every module held in a field of a reached module was reached too. A module
   * assigned to a field but never registered (`this.dropout = new Dropout(…)` instead of
   * `this.child("dropout", …)`) would keep its old mode, and its parameters would be missing from the
   * state dict and the optimizer: throwing names it instead. The walk is over a few hundred objects,
   * run once per train()/eval() (per epoch and evaluation), not per step.
   */
  train(on = true): this {
    const reached = [...this.namedModules()];
    for (const [, m] of reached) m.training = on;
    const all = new Set(reached.map(([, m]) => m));
    for (const [path, m] of reached) m.checkReached(path, all);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  private checkReached(path: string, reached: Set<Module>): void {
    for (const [field, v] of Object.entries(this)) {
      const held = v instanceof Module ? [v] : Array.isArray(v) ? v.filter((x): x is Module => x instanceof Module) : [];
      for (const m of held) {
        if (reached.has(m) || this.borrowed.has(m)) continue;
        const name = path ? `${path}.${field}` : field;
        throw new TunekitError(`module '${name}' (${m.constructor.name}) is held in a field but not registered as a child, so train()/eval() cannot reach it; register it with this.child("${field}", …)`);
      }
    }
  }

  /**
   * Moves every parameter to `device` (in place, as torch's Module.to): the parameters become views of
   * one arena per dtype there (float32, and bf16 for weights loaded as bf16), filled with one copy each.
   * Gradients are dropped (an optimizer made before the move must be made again).
   */
  to(device: Device | string): this {
    const d = parseDevice(device);
    const params = [...new Set(this.parameters())];
    if (params.every((p) => p.device === d) && this.arenas.length && this.arenas.every((a) => a.storage.device === d)) return this;
    this.dropGrads(params);
    const old = this.arenas;
    this.arenas = packByDtype(params, d);
    old.forEach((a) => a.free());
    return this;
  }

  /** The arenas the parameters live in after to(), one per dtype (empty before). */
  arenas: Arena[] = [];

  /**
   * Stores the parameters `which` selects as `dtype` (values rounded to nearest even for bf16), on the
   * device they are on; the others are left alone. Gradients are dropped. After to() the arenas are
   * rebuilt, so each dtype still has one.
   */
  castParameters(dtype: DType, which: (name: string, p: Parameter) => boolean): this {
    const params = [...this.namedParameters()].filter(([n, p]) => p.dtype !== dtype && which(n, p)).map(([, p]) => p);
    if (!params.length) return this;
    this.dropGrads(params);
    for (const p of new Set(params)) {
      const s = allocate(p.size, p.device, dtype).copyFromStorage(p.storage);
      release(p.storage);
      p.storage = s;
    }
    if (this.arenas.length) {
      const d = this.arenas[0].storage.device, old = this.arenas;
      this.arenas = packByDtype([...new Set(this.parameters())], d);
      old.forEach((a) => a.free());
    }
    return this;
  }

  private dropGrads(params: Parameter[]): void {
    for (const p of params) {
      if (p.grad) release(p.grad);
      p.grad = null;
      p.gradTouched = false;
    }
  }

  /** The device of the parameters (the first one's; to() puts them all on one). */
  get device(): Device {
    return this.parameters()[0]?.device ?? "cpu";
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      if (p.grad) p.grad.fill(0);
      p.gradTouched = false;
    }
  }
}

/** Shared by a model's modules: the dropout stream. */
export interface Context {
  gen: Generator;
}
