"""The Mesos v1 HTTP APIs on the master: scheduler (`/api/v1/scheduler`) and operator
(`/api/v1`), translated to and from the core's messages (`convert`)."""
