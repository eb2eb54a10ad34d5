"""`python -m mesos_master`."""
import sys

from mesos_master.main import main

sys.exit(main())
