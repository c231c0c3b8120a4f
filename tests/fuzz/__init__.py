"""Hostile input: property-based (hypothesis) and coverage-guided (atheris) fuzzing of
every decoder a peer reaches.  See README.md here for the budgets and how to run longer."""
