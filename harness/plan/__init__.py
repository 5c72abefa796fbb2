"""From an experiment to a plan: the DAG of content-keyed steps, the plan file, the store its
keys address, and the checks a plan passes before anything runs."""
