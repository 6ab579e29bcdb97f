"""Start, reuse and stop Relend's local servers: backend, action server, Rasa, support desk.

Used by the run command, the end-to-end tests, the benchmarks and the QA conversation runner,
so that there is one way to bring the live assistant up. Every server binds to 127.0.0.1.
"""
