"""A job as a whole: its objects in the store (layout, documents, state), split and compose, the
local run of every chunk (locks, runner, `blur`) and cleanup."""
