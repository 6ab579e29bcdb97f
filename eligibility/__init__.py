"""Relend eligibility backend: the sandbox of the lender's decision service.

It decides, for one borrower, whether they can borrow now and exactly why not,
computed from the borrower's records at request time. See ``docs/backend.md``.
"""
