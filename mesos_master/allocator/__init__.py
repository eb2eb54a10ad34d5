"""Allocators decide how much each framework may get; the master turns grants into offers."""
from mesos_master.allocator.base import Allocator, OfferGrant
from mesos_master.allocator.simple import SimpleAllocator

__all__ = ["Allocator", "OfferGrant", "SimpleAllocator"]
