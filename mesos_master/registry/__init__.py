"""Durable facts the master cannot rebuild from re-registration: admitted and unreachable agents,
role weights and quotas."""
from mesos_master.registry.base import (
                                        AdmitAgent,
                                        MarkReachable,
                                        MarkUnreachable,
                                        MemoryRegistry,
                                        Registry,
                                        RegistryOperation,
                                        RegistryState,
                                        RemoveAgent,
                                        UpdateQuota,
                                        UpdateWeights,
)

__all__ = ["AdmitAgent", "MarkReachable", "MarkUnreachable", "MemoryRegistry", "Registry",
           "RegistryOperation", "RegistryState", "RemoveAgent", "UpdateQuota", "UpdateWeights"]
