"""Step 4: the two-tier response cache (a per-process LRU in front of Redis), tenant-safe and single-flight.

``service.look_up_cache()`` and ``CacheLookup.store*()`` are what the pipeline calls; the other
modules are the parts they are made of.
"""
