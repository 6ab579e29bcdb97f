"""Measuring the assistant's understanding: the evaluation sets, the routes the bot takes for
each intent, near-copy detection between sets, and the evaluation report with its gate.

Entry point: ``scripts/evaluate_nlu.py`` (see the README, "NLU")."""
