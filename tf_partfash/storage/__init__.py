"""Files that survive a crash: atomic writes and locks, versioned caches that resume, progress
lines, and the names of every file of a run's directory. Used by every package; it uses only the
declarations (config, methods)."""
