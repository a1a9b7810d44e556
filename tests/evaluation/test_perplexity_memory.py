"""The answer-token perplexity's peak memory grows with its chunk, not with batch x length x vocabulary.

Measured on the CPU in a fresh process: a shrunk Qwen2 (2 layers of width 64) with Qwen2.5's
real vocabulary of 152,064 words, a batch of 8 conversations of about 1,000 tokens. Its whole
logits would be 8 x 1,000 x 152,064 x 4 bytes = 4.5 GiB in fp32 alone; the process's peak
resident memory (``VmHWM``, reset just before the call) must stay within the planner's bound
for one batch, :func:`ift_tutorial.planning.ledger.eval_batch_bytes`, which a T4 affords.
"""

from __future__ import annotations

import json
import subprocess
import sys

from ift_tutorial.planning.memory import GiB

SCRIPT = r"""
import json, torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from ift_tutorial.evaluation.perplexity import LOGITS_CHUNK, perplexity
from ift_tutorial.paths import TINY_MODEL_DIR
from ift_tutorial.planning.ledger import eval_batch_bytes

torch.manual_seed(0)
torch.set_num_threads(2)
config = Qwen2Config(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=False)
model = Qwen2ForCausalLM(config).eval()
tokenizer = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
answer = " ".join(f"{i} plus {i} is {2 * i}." for i in range(130))
conversations = [[{"role": "user", "content": f"Count with me, {k}."},
                  {"role": "assistant", "content": answer}] for k in range(8)]

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

perplexity(model, tokenizer, conversations[:1], batch_size=1, max_length=64)  # warm-up
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current size
before = status("VmRSS:")
result = perplexity(model, tokenizer, conversations, batch_size=8, max_length=1024)
print(json.dumps({"peak": status("VmHWM:") - before, "tokens": result["tokens"],
                  "bound": eval_batch_bytes(config, 8, 1024, LOGITS_CHUNK, compute_bytes=4),
                  "whole": 8 * 1024 * config.vocab_size * 4}))
"""


def test_perplexity_peak_stays_within_the_chunked_bound():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["tokens"] > 4 * 512  # several chunks of answer positions were scored
    assert m["peak"] <= m["bound"], f"peak {m['peak'] / GiB:.2f} GiB > bound {m['bound'] / GiB:.2f} GiB"
    assert m["bound"] < m["whole"] / 4  # what the whole logits would have taken, in fp32 alone
