"""The nouns (assets, variants, upload sessions, attachments), their state machines and all SQL."""
