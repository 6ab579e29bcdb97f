"""Security tests: each one attacks a real service and checks it refused and changed nothing."""
