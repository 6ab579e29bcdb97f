"""Relend's custom actions, split by concern.

- ``settings``: configuration from environment variables
- ``backend``: the HTTP client of the eligibility service
- ``language``, ``formatting``: choosing the borrower's language; money and dates in it
- ``explanations``: turning a decision into words (no I/O); ``visuals``: the picture of the
  borrower's situation (a timeline, the limit in use) attached to some answers
- ``context``: reading identity and locale from the channel's metadata each turn
- ``eligibility``, ``clarify``, ``appeals``, ``handoff``: the actions themselves; ``records``:
  loans, instalments and repayments; ``reminders``: repayment reminders on or off
"""
