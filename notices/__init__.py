"""The notifier: each change of the eligibility backend's outbox (docs/backend.md, "Outbox")
goes to the borrower's chat through the desk (``POST /internal/notices``), exactly once per
change key. ``python -m notices`` (docs/desk.md, "Proactive notices")."""
