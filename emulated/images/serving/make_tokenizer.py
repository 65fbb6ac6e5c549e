"""Write a tiny stand-in tokenizer for a model into a Hugging Face cache.

The Dynamo frontend and mocker resolve the served model name through the
Hugging Face cache; with HF_HUB_OFFLINE=1 and this cache they never reach
the hub. The tokenizer is a small byte-level BPE (any byte sequence encodes,
any token id the mocker emits decodes) with DeepSeek-R1's special tokens and
a chat template of the same shape.

usage: make_tokenizer.py HF_HOME ORG/NAME
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

BAR = "\uff5c"  # FULLWIDTH VERTICAL LINE, as in DeepSeek's special tokens
BOS = f"<{BAR}begin▁of▁sentence{BAR}>"
EOS = f"<{BAR}end▁of▁sentence{BAR}>"
USER = f"<{BAR}User{BAR}>"
ASSISTANT = f"<{BAR}Assistant{BAR}>"
VOCAB_SIZE = 2048
MAX_CONTEXT = 163840

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}" + USER + "{{ message['content'] }}"
    "{% elif message['role'] == 'assistant' %}" + ASSISTANT + "{{ message['content'] }}" + EOS + ""
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}"
)

# A seeded corpus keeps the trained vocabulary, and so the snapshot revision,
# the same on every build; the pseudo-words give BPE enough merges to fill
# VOCAB_SIZE.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Disaggregated serving splits prefill and decode across GPU trays.",
    "Hello! How can I help you today? Let me think step by step.",
    "def main():\n    print('hello world')\n    return 0\n",
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ? ' \" # @ & % $",
]


def corpus() -> list[str]:
    rng = random.Random(0)
    words = ["".join(rng.choice(string.ascii_lowercase) for _letter in range(rng.randint(3, 9))) for _word in range(4000)]
    return SENTENCES * 20 + [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]


def build_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS, USER, ASSISTANT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus(), trainer)
    return tokenizer


def write_cache(hf_home: Path, repo_id: str) -> Path:
    tokenizer = build_tokenizer()
    bos_id, eos_id = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS)
    files = {
        "tokenizer.json": tokenizer.to_str(),
        "tokenizer_config.json": json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": EOS,
                "add_bos_token": False,
                "add_eos_token": False,
                "model_max_length": MAX_CONTEXT,
                "chat_template": CHAT_TEMPLATE,
            },
            indent=2,
        ),
        "config.json": json.dumps(
            {
                "architectures": ["DeepseekV3ForCausalLM"],
                "model_type": "deepseek_v3",
                "vocab_size": tokenizer.get_vocab_size(),
                "bos_token_id": bos_id,
                "eos_token_id": eos_id,
                "max_position_embeddings": MAX_CONTEXT,
            },
            indent=2,
        ),
        "generation_config.json": json.dumps({"bos_token_id": bos_id, "eos_token_id": eos_id}, indent=2),
    }
    # The revision is derived from the content, as a real commit hash would be.
    digest = hashlib.sha1()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode())
    revision = digest.hexdigest()

    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot


def main(argv: list[str]) -> int:
    if len(argv) != 3 or "/" not in argv[2]:
        sys.stderr.write(__doc__ or "")
        return 2
    snapshot = write_cache(Path(argv[1]), argv[2])
    sys.stdout.write(f"tokenizer written to {snapshot}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
