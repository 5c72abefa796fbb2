"""Versions of generated content that no spec spells out: the synthetic world's files and the
tiny foundation models built from them. Step keys include them, so a run folder made before a
change never reuses a step trained or evaluated on the old content. Bump the one whose output
changes. No imports: the planner reads these without loading torch or the generators."""

SYNTHETIC_VERSION = 8  # the files `harness data synth` writes
FOUNDATION_VERSION = "5"  # the tiny tokenizer, tower and LLM recipes
