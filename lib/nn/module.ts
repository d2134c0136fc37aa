// Modules own parameters under Hugging Face's names, so a state dict maps one-to-one onto the
// checkpoint files Python writes and reads.
import { TunekitError } from "../errors";
import { Tensor, shapeStr } from "../tensor/tensor";
import { Generator } from "../tensor/ops";

export class Parameter extends Tensor {
  constructor(shape: number[], data?: Float32Array) {
    super(shape, data, true);
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

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  protected param(name: string, shape: number[]): Parameter {
    const p = new Parameter(shape);
    this.params.set(name, p);
    return p;
  }

  /** Replaces a child (LoRA wraps a Linear in place). */
  replaceChild(name: string, m: Module): void {
    if (!this.children.has(name)) throw new TunekitError(`replaceChild: no child '${name}'`);
    this.children.set(name, m);
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

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Copies tensors into parameters by name; returns the names it did not find. */
  loadTensors(tensors: Map<string, { shape: number[]; data: Float32Array }>): { missing: string[]; loaded: string[] } {
    const missing: string[] = [], loaded: string[] = [];
    for (const [name, p] of this.namedParameters()) {
      const t = tensors.get(name);
      if (!t) {
        missing.push(name);
        continue;
      }
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]))
        throw new TunekitError(`weight '${name}' has shape ${shapeStr(t.shape)} in the checkpoint, expected ${shapeStr(p.shape)} for this config`);
      p.data.set(t.data);
      loaded.push(name);
    }
    return { missing, loaded };
  }

  zeroGrad(): void {
    for (const p of this.parameters()) if (p.grad) p.grad.fill(0);
  }
}

/** Shared by a model's modules: the dropout stream. */
export interface Context {
  gen: Generator;
}
