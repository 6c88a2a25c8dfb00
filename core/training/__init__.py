"""Training: the generic loop over any task's recipe, trainers (devices) as plugins."""
