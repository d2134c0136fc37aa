"""Python's side of the file exchange with tunekit (bench/gpu/interop.mjs), run between its save and load:
    python3 bench/gpu/interop.py DIR GPT2_FIXTURE_DIR
1. transformers' from_pretrained and peft's PeftModel.from_pretrained read what tunekit saved on the GPU
   (DIR/tk-bert, DIR/tk-lora) and give tunekit's logits (DIR/tk-logits.json);
2. the reverse: a BERT classifier and a LoRA adapter made here (DIR/py-bert, DIR/py-lora) with their
   logits (DIR/py-logits.json), which interop.mjs load compares on tunekit's side.
Prints one JSON line; exits 1 when a difference exceeds 1e-4."""
import json
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForSequenceClassification, GPT2LMHeadModel

d, gpt2_dir = sys.argv[1], sys.argv[2]
dev = "cuda" if torch.cuda.is_available() else "cpu"
ref = json.load(open(os.path.join(d, "tk-logits.json")))
B, T = ref["B"], ref["T"]
mask = torch.tensor(ref["mask"], device=dev).reshape(B, T)
bert_ids = torch.tensor(ref["bertIds"], device=dev).reshape(B, T)
gpt_ids = torch.tensor(ref["gptIds"], device=dev).reshape(B, T)
keep = mask.reshape(-1).bool()


def gpt_logits(model):
    return model(input_ids=gpt_ids, attention_mask=mask).logits.reshape(B * T, -1)[keep].float()


out = {"device": dev}
with torch.no_grad():
    bert = AutoModelForSequenceClassification.from_pretrained(os.path.join(d, "tk-bert")).to(dev).eval()
    got = bert(input_ids=bert_ids, attention_mask=mask).logits.reshape(-1)
    out["tkBertMaxDiff"] = (got - torch.tensor(ref["bert"], device=dev)).abs().max().item()
    base = GPT2LMHeadModel.from_pretrained(gpt2_dir).to(dev).eval()
    lora = PeftModel.from_pretrained(base, os.path.join(d, "tk-lora")).to(dev).eval()
    want = torch.tensor(ref["gpt2Lora"], device=dev).reshape(B * T, -1)[keep]
    out["tkLoraMaxDiff"] = (gpt_logits(lora) - want).abs().max().item()

    # The reverse: weights tunekit has never seen.
    torch.manual_seed(0)
    for p in bert.parameters():
        p.add_(torch.randn_like(p) * 0.01)
    bert.save_pretrained(os.path.join(d, "py-bert"))
    py = {"bert": bert(input_ids=bert_ids, attention_mask=mask).logits.reshape(-1).tolist()}
    base2 = GPT2LMHeadModel.from_pretrained(gpt2_dir).to(dev).eval()
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], lora_dropout=0.0, init_lora_weights=False, fan_in_fan_out=True)
    peft_model = get_peft_model(base2, cfg).eval()
    peft_model.save_pretrained(os.path.join(d, "py-lora"))
    py["gpt2Lora"] = peft_model(input_ids=gpt_ids, attention_mask=mask).logits.reshape(-1).float().tolist()
json.dump(py, open(os.path.join(d, "py-logits.json"), "w"))
print(json.dumps(out))
sys.exit(0 if max(out["tkBertMaxDiff"], out["tkLoraMaxDiff"]) <= 1e-4 else 1)
