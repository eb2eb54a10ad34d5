"""Durable facts the master cannot rebuild from re-registration: admitted and unreachable agents."""
from mesos_master.registry.base import (AdmitAgent, MarkReachable, MarkUnreachable, MemoryRegistry,
                                        Registry, RegistryOperation, RegistryState, RemoveAgent)

__all__ = ["AdmitAgent", "MarkReachable", "MarkUnreachable", "MemoryRegistry", "Registry",
           "RegistryOperation", "RegistryState", "RemoveAgent"]
