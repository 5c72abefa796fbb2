"""The README written at the top of every synthetic world folder."""

WORLD_README = """\
# Synthetic world (seed {seed}, scale {scale})

Written by `harness data synth`; the same seed and scale always give the same bytes.
Every file is in the official format of the data it stands in for, so the harness reads it
with the loaders it uses for the real data.

| path | stands in for | format |
|---|---|---|
| images/ | COCO / LAION images | {image_size}x{image_size} PNG; names as in the JSON files |
| stage1/captions.json | LLaVA's LCS-558K caption pairs | LLaVA conversation JSON ("plain") |
| stage2/llava_instruct.json | LLaVA-80K + MMBench-format practice | LLaVA conversation JSON |
| stage2/sharegpt.json | ShareGPT language-only conversations | ShareGPT JSON |
| llava-bench/ | LLaVA-Bench | questions, context, answers_gpt4 (.jsonl), images/ |
| mm-vet/ | MM-Vet | mm-vet.json, images/ |
| mmbench/mmbench_dev_en.tsv | MMBench dev | TSV with base64 images |
| vicuna-80/ | Vicuna-80 (FastChat) | question.jsonl, reference_answer/gpt-4.jsonl |
| mmlu/ | cais/mmlu | <subject>/{{dev,validation,test}}-00000-of-00001.parquet, README.md configs |

Scenes: up to four coloured shapes in a 2x2 grid, a word, or a sum of two digits, on a dark or
light background. Benchmark images are fresh scenes, never used in training; references use
the phrasing the training data teaches. Answer letters of every multiple-choice set are
balanced, so answering one constant letter scores exactly chance.
"""
