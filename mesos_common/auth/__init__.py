"""Security's pure parts: credentials, ACLs, rate limits (no IO beyond reading a flag's file).

The wire (CURVE, ZAP) lives in mesos_common/transport.py and curve.py; HTTP authentication in
mesos_common/auth/http.py; where the master applies these, in its core.
"""
