"""Rasa input channels of Relend's assistant (listed in credentials.yml)."""
