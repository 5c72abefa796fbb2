"""Running a plan: the orchestration of the run/plan/eval commands, the runner over an executor,
the steps each kind runs, and the collection of results."""
