"""Plumbing both services share: settings, errors, JSON, validators, handlers, start-up."""
