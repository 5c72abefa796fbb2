"""What a plan costs: measured GPU-hours and dollars, the planner's estimates before a run, the
budget guard, calibration from finished runs, and the judge's share."""
