"""The composition root: the full services container and the complete deletion registry, for web and workers."""
