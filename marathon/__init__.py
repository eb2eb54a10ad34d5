"""Marathon-compatible framework on Corral (the Marathon v2 API issue builds it here)."""
