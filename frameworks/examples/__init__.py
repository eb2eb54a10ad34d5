"""Small frameworks people copy from: `batch` (many shell commands) and `execute` (one task)."""
