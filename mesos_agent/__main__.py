"""`python -m mesos_agent` = `mesos-agent`."""
import sys

from mesos_agent.main import main

sys.exit(main())
