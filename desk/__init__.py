"""Relend support desk: owns the conversations between the app and the assistant.

The in-app chat connects here (WebSocket); the desk verifies who the borrower is, stores every
message, forwards messages to Rasa's desk channel with the verified identity and locale signed
(common/signing.py), and
routes conversations to support agents on handoff. See docs/desk.md.
"""
