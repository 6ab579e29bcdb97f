"""The HTTP routes, one module per area; ``eligibility.api.create_app`` includes their routers."""
