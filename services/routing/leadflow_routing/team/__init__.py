"""The team directory: reps, their territories, segments, capacity and availability."""
