"""The schedule explorer: the lock's guarantees checked over schedules Hypothesis
searches (see docs/library/schedule-explorer.md)."""
