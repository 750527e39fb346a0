"""One package per lesson: what only that lesson needs (its exercises first; its models and drivers as they move here)."""
