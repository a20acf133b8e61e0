"""Minimal jinja chat templates per model family (see unlearning/data/templates.py: ensure_chat_template)."""
