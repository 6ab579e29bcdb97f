"""Scripted conversation tests that QA writes and trusts, run against the live assistant.

A script (YAML) names a borrower — a demo borrower, or a backend state set up just for it —
then turns: what the borrower says or presses, what an agent does, and what must hold for the
reply. ``python -m qa run`` starts or reuses the live stack and reports per script; see the
README's QA guide and tests/conversations/ for examples.
"""
