"""Plumbing both services share: settings, errors, JSON, validators, handlers, start-up.

It imports neither service: each extends what it needs (its own errors and their table,
its bounds, its log fields) in its own package."""
