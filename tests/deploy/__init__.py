"""Deployment: gunicorn workers, the command line, legacy WSGI apps, static files,
monkey-patching checks, the blocking monitor, and the examples."""
