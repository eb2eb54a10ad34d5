"""One script per figure: `python -m benchmarks.<name> [flags]`; the last stdout line is JSON."""
