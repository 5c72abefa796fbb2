"""How fast a tiny LLM learns the option-to-letter lookup that letter-format benchmarks need.

MMLU and MMBench score the letter after "Answer:"; to get it right a model must find the option
that holds its answer and copy that option's letter. This probe isolates that one step: a fresh
LLM of a tiny size's shape trains on lookup drills ("Which option says X?" with X among the
options), loss on the answer letters only, and every `--every` steps prints its accuracy on
held-out drills alone and in MMLU's 5-shot layout (chance 25%). `--recall F` puts a share F of
dense associative-recall blocks in the data ("A. red A" option lines, then "Option with red: A"
queries): eight supervised lookups per block instead of one. `--per-row 1 --filler N` trains on
single drills after 0-N random words, so the drill's distance from the start varies.
`--attention W` trains as the foundation build's lookup rows do (harness.model.pretrain.
lookup_loss): drill rows, and W x the loss of two supervised attention heads. `--init S` sets
the initializer's std (default 1/sqrt(width), as the foundation build; 0.02 is LLaMA's).

    .venv/bin/python bench/lookup_probe.py [--size tiny-1m] [--steps 1000] [--lr 3e-3]
                                           [--batch 32] [--recall 0.0] [--every 100]
                                           [--attention 0.0] [--init S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch

DRILLS_PER_ROW = 4  # rows hold 1-4 drills, so the item's position in the row varies


def encode(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and the mask of the letters to supervise (" A".." D" after ':' or after
    an option's text)."""
    from harness.data.synthetic.mmlu import LETTERS

    rows = tokenizer(texts)["input_ids"]
    ids = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    letters = torch.zeros_like(ids, dtype=torch.bool)
    for letter in LETTERS:
        letters |= ids == tokenizer.convert_tokens_to_ids("Ġ" + letter)
    letters[:, 0] = False
    return ids, letters


def training_texts(
    seed: int, rows: int, recall: float, per_row: int = DRILLS_PER_ROW, filler: int = 0
) -> list[str]:
    from harness.data.synthetic.drills import drills, option_pools
    from harness.data.synthetic.mmlu import LETTERS, header, render_item

    rng = random.Random(f"{seed}-lookup-probe")
    items = drills(seed, rows * per_row, "lookup-probe")
    pools = option_pools(seed)
    texts: list[str] = []
    for _ in range(rows):
        if rng.random() < recall:
            options = rng.sample(rng.choice(pools), 4)
            block = "\n".join(f"{LETTERS[k]}. {o} {LETTERS[k]}" for k, o in enumerate(options))
            asked = [rng.randrange(4) for _ in range(4)]
            queries = "".join(f"\nOption with {options[k]}: {LETTERS[k]}" for k in asked)
            texts.append(block + queries)
        else:
            shown = [items.pop() for _ in range(rng.randint(1, per_row))]
            body = "\n\n".join(render_item(item, with_answer=True) for item in shown)
            words = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, filler))]
            prefix = " ".join(words) + "\n\n" if words else ""
            texts.append(prefix + header("matching options") + body)
    return texts


def held_out_texts(seed: int) -> tuple[list[str], list[str]]:
    """200 held-out drills, alone and after MMLU's header and five solved drills."""
    from harness.data.synthetic.drills import drills
    from harness.data.synthetic.mmlu import header, render_item

    items = drills(seed, 205, "lookup-probe-test")
    shots = header("matching options") + "".join(
        render_item(item, with_answer=True) + "\n\n" for item in items[:5]
    )
    alone = [render_item(item, with_answer=True) for item in items[5:]]
    return alone, [shots + text for text in alone]


@torch.no_grad()
def last_letter_accuracy(model, tokenizer, texts: list[str]) -> float:
    ids, _ = encode(tokenizer, texts)
    ends = (ids != tokenizer.pad_token_id).sum(1) - 1
    rows = torch.arange(len(texts))
    predicted = model(input_ids=ids).logits[rows, ends - 1].argmax(-1)
    return 100 * (predicted == ids[rows, ends]).float().mean().item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny-1m")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--recall", type=float, default=0.0, help="share of recall blocks")
    parser.add_argument("--per-row", type=int, default=DRILLS_PER_ROW, help="most drills a row")
    parser.add_argument("--filler", type=int, default=0, help="most filler words before a row")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=float, help="initializer std (default 1/sqrt(width))")
    parser.add_argument(
        "--attention", type=float, default=0.0, help="weight of the supervised-attention term"
    )
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from harness.config.registry import load_registry
    from harness.data.synthetic.lookup import lookup_rows
    from harness.model.foundation import fresh_llm, tokenizer_dir
    from harness.model.pretrain import _schedule, encode_lookup_rows, lookup_loss, one_thread

    size = load_registry().sizes[args.size]
    if args.init is not None:
        size = size.model_copy(update={"tiny": {**(size.tiny or {}), "init_std": args.init}})
    vocab = (size.tiny or {}).get("vocab", 2048)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(vocab, args.seed)))
    texts = training_texts(args.seed, 20000, args.recall, args.per_row, args.filler)
    ids, supervised = encode(tokenizer, texts)
    alone, five_shot = held_out_texts(args.seed)
    torch.manual_seed(args.seed)
    model = fresh_llm(size, tokenizer)
    lookup = None
    if args.attention > 0:  # drill rows as the foundation build uses them, heads supervised
        rows = lookup_rows(args.seed, args.steps * args.batch, drills_first=1.0, drills_last=1.0)
        lookup = encode_lookup_rows(tokenizer, rows)
        model.set_attn_implementation("eager")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95))
    step_lr = _schedule(optimizer, args.steps, max(1, args.steps // 50))
    generator = torch.Generator().manual_seed(args.seed)
    print(
        f"{args.size}: {len(ids)} rows of up to {args.per_row} drills after up to {args.filler} "
        f"filler words; lr {args.lr}, batch {args.batch}, recall {args.recall}, "
        f"init {model.config.initializer_range:.3f}, attention {args.attention}"
    )
    print("step  loss   drills alone  5-shot  seconds")
    started = time.perf_counter()
    with one_thread():
        for step in range(1, args.steps + 1):
            model.train()
            rows = torch.randint(0, len(ids), (args.batch,), generator=generator)
            width = int((ids[rows] != tokenizer.pad_token_id).sum(1).max())
            batch, mask = ids[rows, :width], supervised[rows, :width]
            if lookup is not None:
                picked = torch.arange((step - 1) * args.batch, step * args.batch)
                loss, _ = lookup_loss(model, lookup.take(picked), args.attention)
            else:
                logits = model(input_ids=batch).logits[:, :-1]
                targets = batch[:, 1:][mask[:, 1:]]
                loss = torch.nn.functional.cross_entropy(logits[mask[:, 1:]], targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step_lr()
            if step % args.every == 0 or step == args.steps:
                model.eval()
                print(
                    f"{step:5d} {loss.item():.3f}  "
                    f"{last_letter_accuracy(model, tokenizer, alone):11.1f}  "
                    f"{last_letter_accuracy(model, tokenizer, five_shot):6.1f}  "
                    f"{time.perf_counter() - started:7.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
