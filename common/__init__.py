"""Pieces both services (eligibility backend, support desk) use: database engines,
UTC timestamps, migrations. Nothing here knows about either service's tables."""
