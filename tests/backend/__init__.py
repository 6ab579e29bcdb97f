"""Tests of the eligibility backend (a package, so helper modules import by relative name)."""
