"""The search as a web service and its page (serve.py)."""
