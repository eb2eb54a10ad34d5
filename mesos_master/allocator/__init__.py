"""Allocators decide how much each framework may get; the master turns grants into offers."""
from mesos_master.allocator.base import Allocator, OfferGrant
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.allocator.sorter import DRFSorter, RandomSorter, Sorter

__all__ = ["Allocator", "DRFSorter", "HierarchicalAllocator", "OfferGrant", "RandomSorter",
           "Sorter"]
