"""The configuration's first stage: its types (schema.py), read by every later stage for its own section."""
