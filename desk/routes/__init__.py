"""The desk's routers, one a door: pages, demo login, the borrower's chat socket, the agents'
console API and socket, and the action server's internal API (wired in desk/api.py)."""
