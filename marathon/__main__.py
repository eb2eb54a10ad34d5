"""`python -m marathon`."""
import sys

from marathon.main import main

sys.exit(main())
