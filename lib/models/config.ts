// What the model code derives from a ModelConfig (lib/io/config.ts) beyond its plain fields.
import { ConfigError } from "../errors";
import type { ModelConfig } from "../io/config";
import type { GeluApproximate } from "../tensor/ops";

export type { ModelConfig };

/** HF's activation names → the GELU kernel's mode. Anything else is refused, not approximated. */
export function geluMode(c: ModelConfig): GeluApproximate {
  switch (c.hiddenAct) {
    case "gelu":
      return "none";
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return "tanh";
    default:
      throw new ConfigError(`config.json: activation '${c.hiddenAct}' is not supported; expected gelu, gelu_new or gelu_pytorch_tanh`);
  }
}

/** RoBERTa numbers positions from padding_idx + 1 and gives padding tokens padding_idx. */
export const robertaPadding = (c: ModelConfig): number => c.padTokenId ?? 1;
